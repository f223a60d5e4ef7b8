// Bench section: decision latency of the same example policies compiled from AssemblyScript,
// Rust and C, through the real Engine (worker round trip, fresh instance, fuel, simulated host).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { printTable, sample, type BenchRow } from './table.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import type { PolicyRequest } from '../../runtime/contract/types.ts';
import type { SimulatedWorld } from '../../runtime/capabilities/simulated/world.ts';
import { readPrebuilt, SDK_REPO_ROOT } from '../build-guests/prebuilt.ts';

const LANGUAGES = ['assemblyscript', 'rust', 'c'] as const;
const EXAMPLES = ['memlock-cap', 'vfio-only'] as const;

function component(lang: (typeof LANGUAGES)[number], example: string): Uint8Array {
  if (lang !== 'assemblyscript') return readPrebuilt(lang, example);
  const path = join(SDK_REPO_ROOT, 'guest-examples', 'assemblyscript', 'build', `${example}.wasm`);
  if (!existsSync(path)) throw new Error(`missing ${path}: run \`npm run build:guests\` first`);
  return new Uint8Array(readFileSync(path));
}

// The allow path of both examples: identity lookup with labels, one set-memlock, one log line.
const world: SimulatedWorld = {
  requesterPid: 4100,
  vms: [
    {
      identity: {
        uuid: '8d2f4c1e-0000-4000-8000-00000000a001',
        name: 'vm-own',
        id: 7,
        labels: [
          ['vfio', 'true'],
          ['memory-bytes', '8589934592'],
        ],
      },
      pids: [4100, 4101],
    },
  ],
  processes: [],
  canRaiseHardLimit: true,
};
const request: PolicyRequest = {
  operation: 'set-memlock',
  requesterPid: 4100,
  requesterUid: 107,
  targetPid: 4101,
  bytes: 1n << 30n,
};

export async function run(iterations = 2000): Promise<void> {
  const engine = new Engine({ workers: 1, linuxCapabilities: false });
  try {
    await engine.ready();
    for (const example of EXAMPLES) {
      const rows: BenchRow[] = [];
      const fuel: string[] = [];
      for (const lang of LANGUAGES) {
        const compiled = await engine.compile(component(lang, example));
        if (!compiled.ok) throw new Error(`engine refused ${lang}/${example}: ${compiled.kind}: ${compiled.message}`);
        const sha = compiled.policy.sha256;
        const check = await engine.evaluate(sha, request, { kind: 'simulated', world });
        if (check.decision !== 'allow')
          throw new Error(`${lang}/${example} did not allow the bench request: ${check.reason}`);
        fuel.push(`${lang} ${check.fuelUsed}`);
        rows.push({
          name: `${lang} (${compiled.policy.size} B)`,
          samplesUs: await sample(() => engine.evaluate(sha, request, { kind: 'simulated', world }), iterations),
        });
      }
      printTable(
        `decision latency by policy language: ${example} (allow path, Engine, 1 worker)`,
        rows,
        `c (${component('c', example).length} B)`,
      );
      // Fuel is deterministic: a machine-independent cost comparison next to the noisy timings.
      console.log(`\nfuel used per decision: ${fuel.join(', ')}`);
    }
  } finally {
    await engine.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
