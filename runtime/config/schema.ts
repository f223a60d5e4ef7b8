// The daemon's configuration, as one TypeBox schema: the source of the DaemonConfig type, of the
// defaults (`default`, or `x-default` where the value depends on the host), of the validation of
// config files and --config-json, of docs/config.schema.json and of docs/configuration.md.
// Every key is optional in a file; resolveConfig (runtime/daemon/config.ts) fills the rest.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeGuard } from '@sinclair/typebox';
import { DEFAULT_INLINE_BUDGET_MS, DEFAULT_INLINE_FUEL } from '../engine/speculative/inline-runner.ts';
import { EngineLimits } from '../wire/schemas/limits.ts';
import { SCHEDULER_DEFAULTS } from '../server/scheduler/fair-scheduler.ts';
import { MAIN_THREAD_BURST_MS } from '../server/scheduler/turn-queue.ts';
import { DROPPED_MEMORY_MS_PER_MIB } from '../engine/dropped-memory-cost.ts';

const int = (
  minimum: number,
  maximum: number,
  def: number | undefined,
  description: string,
  extra: Record<string, unknown> = {},
) => Type.Integer({ minimum, maximum, ...(def !== undefined ? { default: def } : {}), description, ...extra });
const dynamic = (text: string) => ({ 'x-default': text });
const path = (description: string, def: string | { text: string }) =>
  Type.String({ minLength: 1, description, ...(typeof def === 'string' ? { default: def } : dynamic(def.text)) });

const U32 = 0xffff_ffff;
const HOUR_MS = 3_600_000;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const ConfigSchema = Type.Object(
  {
    runDir: path(
      'Directory of the sockets; created 0755 if missing. Relative paths in a file are relative to the file.',
      { text: '$CAPGATE_RUN_DIR, else /run/capgate as root, ./.capgate/run otherwise' },
    ),
    stateDir: path('Directory of the database; created 0700 if missing.', {
      text: '/var/lib/capgate as root, ./.capgate/state otherwise',
    }),
    adminSocket: path('Admin socket path, relative to runDir.', { text: '$CAPGATE_ADMIN_SOCKET, else admin.sock' }),
    requestSocket: path('Request socket path, relative to runDir.', {
      text: '$CAPGATE_REQUEST_SOCKET, else request.sock',
    }),
    database: path('SQLite database path, relative to stateDir.', 'capgate.db'),
    admin: Type.Object(
      {
        socketMode: int(0, 0o777, 0o600, 'File mode of the admin socket (0o600 = 384).'),
        allowUids: Type.Array(int(0, U32, undefined, 'A uid.'), {
          description: 'Peer uids allowed on the admin socket.',
          ...dynamic("[0, the daemon's uid]"),
        }),
        allowGids: Type.Array(int(0, U32, undefined, 'A gid.'), {
          default: [],
          description: 'Peer gids allowed on the admin socket.',
        }),
        uploadBytesPerSecond: int(
          64 * 1024,
          1024 * 1024 * 1024,
          1024 * 1024,
          "Bytes of request bodies the admin socket reads per second, beyond admin.uploadBurstBytes: policy uploads, and bodies it refused and drops, all together. A body past it is paused (the sender waits), and while it is in debt a new admin connection waits unread (each pays 64 KiB in advance for its first read, given back once it is answered; one that would wait past half of http.headersTimeoutMs, or behind half of http.maxConnections, gets 503 with Retry-After). An upload's bytes are what it costs the daemon's main thread: ~8 MB of buffers start a full garbage collection there (milliseconds during which no VM is answered), so an admin pushing modules in a loop must not set their pace. A policy of http.maxPolicyBytes should still arrive within http.requestTimeoutMs (the daemon warns at start if it cannot).",
        ),
        uploadBurstBytes: int(
          0,
          1024 * 1024 * 1024,
          512 * 1024,
          'Bytes of policy uploads read at once, at full speed, before admin.uploadBytesPerSecond applies (the budget refills at that rate up to this): an upload this large after a quiet second is not slowed.',
        ),
      },
      { additionalProperties: false, description: 'The admin socket: who may manage policies, VMs and the audit.' },
    ),
    request: Type.Object(
      {
        socketMode: int(
          0,
          0o777,
          undefined,
          'File mode of the request socket.',
          dynamic('0o660 (432) with socketGroup set, 0o666 (438) otherwise'),
        ),
        socketGroup: Type.Optional(
          Type.Union(
            [
              int(0, U32, undefined, 'A gid.'),
              Type.String({ minLength: 1, description: 'A group name from /etc/group.' }),
            ],
            {
              description: 'Group (gid or name) owning the request socket, e.g. the group libvirt runs QEMU as.',
              errorMessage: 'must be a gid or a group name',
              ...dynamic("none: the socket keeps the daemon's group"),
            },
          ),
        ),
        deadlineMs: int(1, 300_000, 1000, 'Whole-request deadline, queueing included, in milliseconds.'),
        retryAfterS: int(
          0,
          3600,
          1,
          'Retry-After of 503 overloaded and not-ready answers, in seconds (a 429 vm-rate-limited says when its VM may go on).',
        ),
        identityCacheMs: int(
          0,
          HOUR_MS,
          1000,
          "How long a connection's requester VM, resolved from /proc, is reused (also re-resolved on any VM registry change), in milliseconds. Bounds how long a process that left its VM keeps that identity on an open connection; targets found inside the VM (by set-memlock, or translated from a pid namespace) are taken as inside it for as long. 0 resolves on every request.",
        ),
        connectionsPerVm: int(
          1,
          1_000_000,
          64,
          "Connections one registered VM may hold on the request socket (all its processes together). A full socket (http.maxConnections) closes the oldest idle connection of the biggest holder to admit a VM's connection.",
        ),
        connectionsPerUid: int(1, 1_000_000, 8, 'Connections one uid in no registered VM may hold.'),
        connectionsOutsideVms: int(
          1,
          1_000_000,
          32,
          'Connections all peers in no registered VM may hold together (each closed after one answer); the rest of http.maxConnections is reserved for VMs.',
        ),
      },
      { additionalProperties: false, description: 'The request socket: who may ask, and how long an answer may take.' },
    ),
    engine: Type.Object(
      {
        workers: int(1, 64, undefined, 'Policy evaluation worker threads.', dynamic('2, or 1 on a single core')),
        inlineFuel: int(
          0,
          Number.MAX_SAFE_INTEGER,
          DEFAULT_INLINE_FUEL,
          "Fuel of the first, speculative run on the daemon's thread (at most what engine.inlineBudgetMs holds at 5 ns a unit); 0 runs every evaluation in a worker.",
        ),
        inlineBudgetMs: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1000,
          default: DEFAULT_INLINE_BUDGET_MS,
          description:
            "CPU time of the daemon's thread the speculative runs of one turn of the event loop may take, in milliseconds.",
          errorMessage: "must be a number of milliseconds in (0, 1000] (the daemon's thread is shared by every VM)",
        }),
        limits: EngineLimits,
        allowUnsandboxedCompile: Type.Boolean({
          default: false,
          description:
            "Compile uploads and start-up recompiles even where the compile process cannot sandbox itself (no seccomp in the kernel, a seccomp filter above the daemon that refuses seccomp(2) or capset(2), an architecture other than x86_64 and aarch64, a Landlock domain it could not enter where the kernel has Landlock): untrusted WebAssembly is then compiled with the daemon's uid and capabilities. Off, such compiles are refused with an error naming what is missing.",
        }),
      },
      { additionalProperties: false, description: 'The policy engine.' },
    ),
    scheduler: Type.Object(
      {
        globalConcurrency: int(
          1,
          1024,
          undefined,
          "Evaluations off the main thread at once (waiting for or running in an evaluation worker). A decision the daemon's main thread makes at once takes no slot, so VMs whose policies hold every worker do not hold the other VMs' decisions; one that has to go on in a worker takes a slot then, above this cap if need be (at most perKeyInFlight of one VM).",
          dynamic('engine.workers'),
        ),
        perKeyInFlight: int(
          1,
          1024,
          undefined,
          'Evaluations one VM (or one uid outside VMs) may have in flight at once, on the main thread or in a worker.',
          dynamic('engine.workers - 1, at least 1: one VM never holds every worker'),
        ),
        maxQueued: int(
          1,
          1_000_000,
          1024,
          "Requests queued in all (for an evaluation slot; and, apart, for a turn on the daemon's main thread); beyond it: 503 overloaded.",
        ),
        maxQueuedPerKey: int(
          1,
          1_000_000,
          256,
          'Requests one VM (or one uid outside VMs; for a turn on the main thread, all peers outside VMs together) may have queued.',
        ),
        vmShare: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          default: SCHEDULER_DEFAULTS.vmShare,
          description:
            "Share of one core's time one VM's evaluations may take while another VM is asking (the wall time of each, start to end, averaged by a token bucket); past it the VM's requests wait, and one whose deadline passes gets 429 vm-rate-limited. A VM alone is never held back. 1 turns the cap off.",
          errorMessage: 'must be a number in (0, 1]: the share of one core a VM may use while others ask (1: no cap)',
        }),
        vmBurstMs: Type.Number({
          exclusiveMinimum: 0,
          maximum: 60_000,
          default: SCHEDULER_DEFAULTS.vmBurstMs,
          description:
            "How much one VM's evaluations may take at once above its share (the bucket's size), in milliseconds.",
          errorMessage: 'must be a number of milliseconds in (0, 60000]',
        }),
        mainThreadShare: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          description:
            "Share of the daemon's main thread one VM's requests may take while another VM is asking (their HTTP, identity, decision and audit work, averaged by a token bucket of scheduler.mainThreadBurstMs); past it the VM's requests wait for their turn, and one whose deadline passes gets 429 vm-rate-limited. A VM alone is never held back. 1 turns the cap off.",
          errorMessage:
            'must be a number in (0, 1]: the share of the main thread a VM may use while others ask (1: no cap)',
          ...dynamic('scheduler.vmShare'),
        }),
        mainThreadBurstMs: Type.Number({
          exclusiveMinimum: 0,
          maximum: 60_000,
          default: MAIN_THREAD_BURST_MS,
          description:
            "How much of the main thread one VM's requests may take at once above scheduler.mainThreadShare (the bucket's size), in milliseconds. Small: a VM that starts flooding while another asks runs unpaced only until it is spent.",
          errorMessage: 'must be a number of milliseconds in (0, 60000]',
        }),
        contentionWindowMs: int(
          0,
          HOUR_MS,
          SCHEDULER_DEFAULTS.contentionWindowMs,
          "How long after its last request another VM still counts as asking, in milliseconds: meanwhile scheduler.vmShare and scheduler.mainThreadShare hold, and the main thread's per-request work runs in fair order between VMs instead of at once.",
        ),
        droppedMemoryMsPerMiB: Type.Number({
          minimum: 0,
          maximum: 1000,
          default: DROPPED_MEMORY_MS_PER_MIB,
          description:
            "What one MiB of wasm memory a policy's run dropped (it grew, so it is not recycled) costs after the decision, in milliseconds: the garbage collection that frees it runs later, on threads no evaluation holds. Charged to the VM that asked, with its evaluation's time, toward scheduler.vmShare. 0 charges nothing.",
          errorMessage: 'must be a number of milliseconds in [0, 1000]',
        }),
      },
      { additionalProperties: false, description: 'Fair queueing of requests between VMs.' },
    ),
    http: Type.Object(
      {
        headersTimeoutMs: int(1, HOUR_MS, 5_000, 'Time a client has to send the request head, in milliseconds.'),
        requestTimeoutMs: int(1, HOUR_MS, 30_000, 'Time a client has to send a whole request, in milliseconds.'),
        keepAliveTimeoutMs: int(1, HOUR_MS, 60_000, 'How long an idle connection stays open, in milliseconds.'),
        maxConnections: int(2, 1_000_000, 1024, 'Connections each socket accepts at once.'),
        maxHeaderBytes: int(1024, 1024 * 1024, 16 * 1024, 'Largest request head, in bytes.'),
        maxJsonBytes: int(256, 16 * 1024 * 1024, 64 * 1024, 'Largest JSON request body, in bytes.'),
        maxPolicyBytes: int(
          1,
          256 * 1024 * 1024,
          undefined,
          'Largest policy upload, in bytes.',
          dynamic('engine.limits.maxModuleBytes'),
        ),
        shutdownGraceMs: int(
          0,
          600_000,
          5_000,
          'How long in-flight requests get to finish at shutdown, in milliseconds.',
        ),
      },
      { additionalProperties: false, description: 'HTTP limits of both sockets.' },
    ),
    audit: Type.Object(
      {
        durability: Type.Union([Type.Literal('normal'), Type.Literal('full')], {
          default: 'normal',
          description:
            'normal: a decision is answered once its record is in the audit journal (survives kill -9 of the daemon); full: once that journal write is on disk too (an fdatasync off the main thread; survives a power loss).',
        }),
        retentionDays: Type.Optional(
          Type.Number({
            exclusiveMinimum: 0,
            description: 'Delete audit records older than this many days.',
            ...dynamic('none: records are kept'),
          }),
        ),
        retentionRecords: Type.Optional(
          int(
            1,
            Number.MAX_SAFE_INTEGER,
            undefined,
            'Keep at most this many audit records.',
            dynamic('none: records are kept'),
          ),
        ),
        pruneIntervalS: int(1, 7 * 86_400, 3600, 'How often retention runs, in seconds.'),
      },
      { additionalProperties: false, description: 'The audit log: one record per decision.' },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          LOG_LEVELS.map((l) => Type.Literal(l)),
          { default: 'info', description: 'Log level; logs are JSON lines on stdout.' },
        ),
      },
      { additionalProperties: false, description: "The daemon's log." },
    ),
    policies: Type.Object(
      {
        trustRoots: Type.Array(
          Type.Object(
            {
              name: Type.String({
                pattern: '^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$',
                description: 'Who holds the key, as logs, `capgate policy inspect` and the audit show it.',
                errorMessage: 'must be 1-64 letters, digits, spaces, ".", "_", "@" or "-"',
              }),
              publicKey: Type.String({
                minLength: 1,
                description:
                  "The minisign public key: the second line (`RW…`) of the key's .pub file, as `minisign -G` writes it.",
                errorMessage: "must be a minisign public key: the second line (RW…) of the key's .pub file",
              }),
            },
            { additionalProperties: false, description: 'A trusted signing key.' },
          ),
          {
            default: [],
            description:
              'minisign public keys whose signatures make a revision trusted (docs/fleet.md). Names must be distinct.',
          },
        ),
        requireSignatures: Type.Boolean({
          default: false,
          description:
            'Refuse every revision without a valid signature by a trust root, at push and in the policy directory; bound revisions that no longer pass at a start are suspended (denied with the signature problem).',
        }),
        directory: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              'A policy directory the daemon follows: `<name>.wasm`, `<name>.wasm.minisig` and `bindings.yaml`, as a ConfigMap volume lays them out (docs/fleet.md). Relative paths in a file are relative to the file. The operations it binds are its alone.',
            ...dynamic('none: policies come from the admin socket only'),
          }),
        ),
        directoryPollS: int(
          1,
          86_400,
          30,
          'How often the policy directory is read again besides watching it, in seconds.',
        ),
      },
      {
        additionalProperties: false,
        description: 'Where policies may come from: signing keys, and a policy directory.',
      },
    ),
    metrics: Type.Object(
      {
        eventLoopResolutionMs: int(
          1,
          60_000,
          5,
          "How often the event loop's delay is sampled for /v1/metrics, in milliseconds. A stall is measured to within this; each sample wakes the loop (at 1 ms, ~3% of a core on a 2-core VM).",
        ),
      },
      { additionalProperties: false, description: 'The metrics of /v1/metrics.' },
    ),
  },
  {
    additionalProperties: false,
    title: 'capgate daemon configuration',
    description:
      'The configuration of `capgate serve` (--config <file> as YAML or JSON, --config-json); every key is optional.',
  },
);

/** The configuration after defaults: what the daemon runs with. socketGroup is then a gid. */
export type DaemonConfig = Omit<ResolvedShape, 'request'> & {
  request: Omit<ResolvedShape['request'], 'socketGroup'> & { socketGroup?: number };
};
type ResolvedShape = Required<Static<typeof ConfigSchema>>;

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends Array<unknown> ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/** What a config file, --config-json or startDaemon() accepts: any subset of the keys. */
export type DaemonConfigInput = DeepPartial<Static<typeof ConfigSchema>>;

/** The schema with every key optional at every level: what a file is checked against. */
export function partialDeep<S extends TSchema>(schema: S): TSchema {
  if (!TypeGuard.IsObject(schema)) return schema;
  const properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, partialDeep(v)]));
  const { properties: _p, required: _r, ...options } = schema;
  return Type.Partial(Type.Object(properties, options));
}

export const ConfigInputSchema = partialDeep(ConfigSchema);
