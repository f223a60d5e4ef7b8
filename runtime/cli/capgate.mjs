#!/usr/bin/env node
// The package's bin: capgate is written in TypeScript and runs through tsx (runtime/bootstrap/).
import '../bootstrap/register.mjs';

const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
