// What an upload waits for, from the bytes to a compiled policy the daemon accepts: the compile
// process (launcher up, as in the daemon) and the daemon's checks of its answer in the verifier's
// worker (metering verified, compiled, a timed trial instantiation), for the example guests and
// the isolation bench's upload bombs. Cold: each compile in a fresh compile process (what the
// first upload after a second of quiet pays); warm: one process kept. The baseline is the same
// pipeline run in this thread (compilePolicyWithCore: no process, no daemon-side checks). Beside
// them, the daemon's timed trial instantiation alone (three instantiations, in this thread), the
// part of its checks a trial adds, for a policy the pipeline accepts.
// `npm run bench -- upload`; CAPGATE_BENCH_ROWS=a,b picks cases by name.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { packagePath } from '../../runtime/bootstrap/package-root.ts';
import { compilePolicyWithCore } from '../../runtime/engine/compile.ts';
import { CompileProcess } from '../../runtime/engine/compile/compile-process.ts';
import { trialInstantiation } from '../../runtime/engine/instantiation-cost.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { UPLOAD_BOMBS, type UploadBomb } from '../../test/support/hostile-policies.ts';
import { printTable, sample } from './table.ts';

const ROWS = process.env.CAPGATE_BENCH_ROWS?.split(',');
const COLD_ROUNDS = 6;
const WARM_ROUNDS = 30;

async function cases(): Promise<Array<{ name: string; bytes: Uint8Array }>> {
  const file = (...p: string[]): Uint8Array => new Uint8Array(readFileSync(packagePath('guest-examples', ...p)));
  const all = [
    { name: 'assemblyscript/memlock-cap', bytes: file('assemblyscript', 'build', 'memlock-cap.wasm') },
    { name: 'assemblyscript/vfio-only', bytes: file('assemblyscript', 'build', 'vfio-only.wasm') },
    { name: 'rust/memlock-cap', bytes: file('rust', 'prebuilt', 'memlock-cap.wasm') },
    { name: 'c/memlock-cap', bytes: file('c', 'prebuilt', 'memlock-cap.wasm') },
  ];
  for (const bomb of Object.keys(UPLOAD_BOMBS) as UploadBomb[])
    all.push({ name: `bomb ${bomb}`, bytes: await UPLOAD_BOMBS[bomb]() });
  return all.filter((c) => ROWS === undefined || ROWS.includes(c.name));
}

export async function run(): Promise<void> {
  console.log(
    `\nupload time; load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // The launcher and its channel keep no event loop alive (as in the daemon, whose sockets do).
  const keepAlive = setInterval(() => undefined, 1000);
  const warm = new CompileProcess({ idleMs: 60_000 });
  const cold = new CompileProcess({ idleMs: 0 });
  await Promise.all([warm.start(), cold.start()]);
  try {
    for (const c of await cases()) {
      const refusal = { value: '' };
      let core: Uint8Array | undefined;
      const inThread = await sample(
        async () => {
          const r = await compilePolicyWithCore(c.bytes, DEFAULT_LIMITS);
          refusal.value = r.result.ok ? '' : r.result.message.slice(0, 100);
          core = r.core;
        },
        WARM_ROUNDS,
        2,
      );
      const module = core === undefined ? undefined : new WebAssembly.Module(core);
      const trialUs =
        module === undefined
          ? []
          : await sample(() => trialInstantiation(module, DEFAULT_LIMITS.maxInstantiateMs), WARM_ROUNDS, 2);
      const warmUs = await sample(() => warm.compile(c.bytes, DEFAULT_LIMITS), WARM_ROUNDS, 1);
      const coldUs = await sample(
        () => cold.compile(c.bytes, DEFAULT_LIMITS),
        COLD_ROUNDS,
        0,
        () => cold.idle(),
      );
      printTable(
        `upload: ${c.name} (${c.bytes.length} B${refusal.value ? `; refused: ${refusal.value}` : ''})`,
        [
          { name: 'pipeline in this thread (baseline)', samplesUs: inThread },
          { name: 'compile process, warm, + daemon checks', samplesUs: warmUs },
          { name: 'compile process, cold, + daemon checks', samplesUs: coldUs },
          ...(trialUs.length > 0 ? [{ name: 'trial instantiation alone (3 instances)', samplesUs: trialUs }] : []),
        ],
        'pipeline in this thread (baseline)',
      );
    }
  } finally {
    await Promise.all([warm.close(), cold.close()]);
    clearInterval(keepAlive);
  }
  console.log(
    `load average at end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}
