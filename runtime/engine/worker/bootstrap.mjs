// Worker entry of every engine thread (worker-entry.ts starts them). Workers do not inherit a
// TypeScript loader under every runner (vitest's forks do not; tsx's CLI does), so register it
// here, then load the TypeScript entry that workerData.entry names.
import { workerData } from 'node:worker_threads';
import '../../bootstrap/register.mjs';

const ENTRIES = { evaluate: './worker-main.ts', compile: './compile-main.ts' };
const entry = ENTRIES[workerData?.entry];
if (entry === undefined) throw new Error(`unknown engine worker entry ${String(workerData?.entry)}`);
await import(entry);
