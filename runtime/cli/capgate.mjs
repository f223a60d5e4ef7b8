#!/usr/bin/env node
// The package's bin: capgate is written in TypeScript and runs through tsx (runtime/bootstrap/).
import '../bootstrap/register.mjs';

// `capgate audit ls | head`: a reader that went away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
