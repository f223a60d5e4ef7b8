#!/usr/bin/env node
// The package's bin: capgate is written in TypeScript and runs through tsx, like its scripts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
