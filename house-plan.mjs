// The house plan: which part of capgate may import which. `npm run lint` checks it
// (dependency-cruiser: `depcruise --config house-plan.mjs runtime host-api scripts`).
//
// The layers, from the floor up (a layer imports only from the layers below it):
//
//   runtime/contract      the types every part shares: the guest contract, capability errors
//   runtime/wire          the HTTP API's shapes; a leaf that clients and the OpenAPI document can take alone
//   runtime/os            the platform: libc through koffi, errno, pidfd, peer credentials, /proc
//   runtime/identity      who is asking and which VM a pid belongs to, decided from what the kernel says
//   runtime/capabilities  the host calls a policy may make (linux/ acts on the host, simulated/ on a world)
//   runtime/engine        compiles and runs policies in a sandbox; knows nothing of HTTP, SQLite or the CLI
//   runtime/store         SQLite: policies, VMs, bindings, the audit log
//   runtime/server        the daemon's HTTP front: admin and request channels, audit, metrics
//   runtime/simulator     runs policies against a simulated world, never against the real host
//   runtime/daemon, runtime/cli   the entry points; they assemble everything above
//
// host-api/ is what policy authors build against: it stands apart from runtime/ entirely.
// Every rule is an error: `npm test` fails on a violation.

/** `runtime/<folder>/` as a path pattern. */
const folder = (name) => `^runtime/${name}/`;

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No module reaches itself through its imports: a cycle makes load order decide behaviour.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'wire-is-a-leaf',
      comment:
        'runtime/wire imports nothing else in runtime/ but runtime/contract, so a client or a generated ' +
        'OpenAPI document can take it alone and an engine change cannot change the wire by accident.',
      severity: 'error',
      from: { path: folder('wire') },
      to: { path: '^runtime/', pathNot: [folder('wire'), folder('contract')] },
    },
    {
      name: 'contract-is-a-leaf',
      comment: 'runtime/contract is the floor every part stands on: it imports nothing from runtime/.',
      severity: 'error',
      from: { path: folder('contract') },
      to: { path: '^runtime/', pathNot: folder('contract') },
    },
    {
      name: 'os-is-the-floor',
      comment:
        'runtime/os wraps the platform (libc, errno, pidfd, peer credentials, /proc) and knows nothing of ' +
        'capgate at all (not even the contract): identity, capabilities, store and engine use it, never the ' +
        'other way round.',
      severity: 'error',
      from: { path: folder('os') },
      to: { path: '^runtime/', pathNot: folder('os') },
    },
    {
      name: 'identity-below-capabilities',
      comment:
        'runtime/identity decides VM membership from what the kernel says; capabilities build on it. ' +
        'identity importing capabilities (it once did, for libc and pidfd) makes a folder cycle.',
      severity: 'error',
      from: { path: folder('identity') },
      to: { path: folder('(capabilities|engine|store|server|simulator|daemon|cli|client)') },
    },
    {
      name: 'engine-knows-no-front',
      comment:
        'The engine runs policies; it never imports the HTTP server, the store or the CLI, so the ' +
        'simulator and the daemon run the same engine and an engine test needs no daemon.',
      severity: 'error',
      from: { path: folder('engine') },
      to: { path: folder('(server|store|cli|daemon|simulator)') },
    },
    {
      name: 'simulator-never-touches-the-host',
      comment:
        'The simulator must not reach the real OS effects (capabilities/linux: prlimit on real pids), ' +
        'not even through another module: a policy author running a scenario changes nothing on the host.',
      severity: 'error',
      from: { path: folder('simulator') },
      to: { path: folder('capabilities/linux'), reachable: true },
    },
    {
      name: 'host-api-stands-alone',
      comment: 'host-api/ is what policy authors build against: it imports nothing from runtime/.',
      severity: 'error',
      from: { path: '^host-api/' },
      to: { path: '^runtime/' },
    },
    {
      name: 'no-unresolvable-imports',
      comment: 'An import that resolves to nothing is a typo or a missing file.',
      severity: 'error',
      from: {},
      // ~lib/ is AssemblyScript's standard library, which its compiler provides.
      to: { couldNotResolve: true, pathNot: '^~lib/' },
    },
  ],
  options: {
    // Type-only imports count: a wire type that imports an engine type ties the wire to the engine.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^dist/', 'node_modules', '/build/', '/target/'] },
    enhancedResolveOptions: {
      extensions: ['.ts', '.mjs', '.js', '.d.ts'],
      // Packages' `exports` maps are read as Node reads them for an ES module.
      conditionNames: ['import', 'node', 'default', 'types'],
      exportsFields: ['exports'],
      mainFields: ['module', 'main', 'types'],
    },
  },
};
