// The package.json of a policy project: capgate itself is a devDependency (so `npm install &&
// npm test` works with nothing else installed, and `npx capgate ...` is this project's capgate),
// the scripts build, test, watch and push with it.
export function packageJson(p: {
  name: string;
  description: string;
  lang: string;
  capgate: string;
  devDependencies?: Record<string, string>;
}): string {
  const build = `capgate build --lang ${p.lang} . -o build/policy.wasm`;
  return `${JSON.stringify(
    {
      name: p.name,
      version: '0.1.0',
      private: true,
      description: p.description,
      scripts: {
        build,
        test: 'npm run build && capgate test build/policy.wasm scenario.yaml',
        'test:watch': 'npm run build && capgate test build/policy.wasm scenario.yaml --watch',
        push: 'npm test && capgate policy push build/policy.wasm --activate set-memlock',
      },
      devDependencies: { capgate: p.capgate, ...p.devDependencies },
    },
    null,
    2,
  )}\n`;
}

/** The README section every starter shares: the author's loop, in order. */
export function projectLoop(name: string): string {
  return `    npm install        # capgate (and the compiler, for AssemblyScript) into node_modules
    npm test           # build/policy.wasm, then scenario.yaml in the capgate simulator
    npm run test:watch # the same on every save
    npx capgate eval build/policy.wasm --bytes 8Gi --label memlock-max=16Gi   # one decision
    npm run push       # test, then upload to the daemon as "${name}" and activate it

\`npm run push\` talks to the daemon's admin socket (\`/run/capgate/admin.sock\` as root; pass
\`-- --socket <path>\` or set \`CAPGATE_ADMIN_SOCKET\` otherwise). When a case fails with a trap,
the log line \`panic: ...\` says why and where, and the error names the function;
\`npx capgate build --lang <language> . -o build/policy.wasm --debug\` builds with checks on.

capgate comes from \`devDependencies\` (a \`file:\` path to the capgate this project was made
with); point it elsewhere if you move either. The SDK and its documentation are in
\`capgate-sdk/\`: \`README.md\` (the API), \`CONTRACT.md\` (the contract), \`SCENARIO.md\` (the
scenario format).
`;
}
