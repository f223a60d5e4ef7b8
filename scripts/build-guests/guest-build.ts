// What a guest builder takes and returns, and the loop every language's builder runs; its own
// file so the per-language builders and build-guests.ts, which calls them, do not import each other.
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isStale } from './staleness.ts';

export interface BuiltGuest {
  language: string;
  name: string;
  corePath: string;
  componentPath: string;
  coreBytes: number;
  componentBytes: number;
  /** True when the outputs were newer than every input and nothing was rebuilt. */
  upToDate: boolean;
}

export interface BuildOptions {
  /** Skip examples whose outputs are newer than all their inputs (sources, SDK, WIT, this script). */
  onlyIfStale?: boolean;
}

/** Builds every example of one language; throws with the compiler's output on failure. */
export type GuestBuilder = (options?: BuildOptions) => Promise<BuiltGuest[]>;

export interface ExampleBuild {
  language: string;
  names: readonly string[];
  /** Where <name>.core.wasm and <name>.wasm go. */
  outDir: string;
  /** The files and directories whose changes make an example's outputs stale. */
  inputsOf: (name: string) => string[];
  build: (name: string) => Promise<{ core: Uint8Array; component: Uint8Array }>;
}

/** Builds each example whose outputs are stale (or all of them), and says what it built. */
export async function buildExamples(plan: ExampleBuild, options: BuildOptions = {}): Promise<BuiltGuest[]> {
  mkdirSync(plan.outDir, { recursive: true });
  const built: BuiltGuest[] = [];
  for (const name of plan.names) {
    const corePath = join(plan.outDir, `${name}.core.wasm`);
    const componentPath = join(plan.outDir, `${name}.wasm`);
    const upToDate = options.onlyIfStale === true && !isStale([corePath, componentPath], plan.inputsOf(name));
    if (!upToDate) {
      const { core, component } = await plan.build(name);
      writeAtomically(corePath, core);
      writeAtomically(componentPath, component);
    }
    const bytes = { coreBytes: statSync(corePath).size, componentBytes: statSync(componentPath).size };
    built.push({ language: plan.language, name, corePath, componentPath, ...bytes, upToDate });
  }
  return built;
}

/** Several test runs may build at once: readers must never see a half-written file. */
function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
