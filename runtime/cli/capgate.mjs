#!/usr/bin/env node
// The package's bin. It loads only capgate's compiled JavaScript (dist/, written by `npm run
// build`, which `npm install` runs): nothing is transformed at run time, and nothing is read from
// or written to TMPDIR or HOME (SECURITY.md).
const MAIN = new URL('../../dist/runtime/cli/main.js', import.meta.url);

// `capgate audit ls | head`: a reader that went away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

let main;
try {
  ({ main } = await import(MAIN.href));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes(MAIN.pathname)) throw err;
  process.stderr.write(
    `capgate: ${MAIN.pathname} is missing: this copy of capgate was not built.\nhint: run \`npm run build\` in ${new URL('../..', import.meta.url).pathname}\n`,
  );
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
