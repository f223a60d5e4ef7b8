// Bench section: one decision with a fresh instance, per example policy — through the engine's
// worker pool (what the daemon pays), in-thread (the glue alone, with a new memory per instance
// and with the worker's recycled memories and shared imports), and through jco's transpiled glue
// (the reference), all in the same run. Plus the worker transport on its own.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import type { CompiledPolicy } from '../../runtime/engine/api.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { compilePolicy } from '../../runtime/engine/compile.ts';
import { evaluatePrepared } from '../../runtime/engine/evaluate-instance.ts';
import { InstanceFactory } from '../../runtime/engine/instance-factory.ts';
import {
  compiledExample,
  compileStepExists,
  loadAssemblyScriptExamples,
} from '../../test/engine/run/fixtures/examples.ts';
import { jcoReference, type ReferenceEvaluate } from '../../test/engine/run/fixtures/jco-reference.ts';
import { coreToComponent, fullPolicyWat, uninstrumented, watToCore } from '../../test/engine/run/fixtures/wat.ts';
import { request, simulated, world } from '../../test/engine/run/fixtures/worlds.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { printTable, sample, type BenchRow } from './table.ts';

const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 3000);
/** JIT warm-up of both threads (and wasm tier-up) before sampling: steady state is what we report. */
const WARMUP = Math.min(1000, ITERATIONS);

interface Subject {
  name: string;
  policy: CompiledPolicy;
  reference: ReferenceEvaluate;
}

async function subjects(): Promise<Subject[]> {
  const out: Subject[] = [];
  for (const ex of await loadAssemblyScriptExamples()) {
    out.push({ name: ex.name, policy: await compiledExample(ex), reference: await jcoReference(ex.component) });
  }
  // Through compilePolicy, like every policy the daemon runs (its instrumentation stripped first).
  const component = await coreToComponent(watToCore(uninstrumented(fullPolicyWat())));
  const compiled = await compilePolicy(component, { ...DEFAULT_LIMITS });
  if (!compiled.ok) throw new Error(`compilePolicy rejected the WAT policy: ${compiled.message}`);
  out.push({ name: 'wat-every-import', policy: compiled.policy, reference: await jcoReference(component) });
  return out;
}

/** Round trip of a job-sized message to an echo worker: postMessage vs SharedArrayBuffer + Atomics. */
async function transportRows(): Promise<BenchRow[]> {
  const job = { type: 'evaluate', id: 1, sha256: 'x'.repeat(64), request: request(), capabilities: simulated() };
  const echo = `
    const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
    const answer = (id) => ({ id, outcome: { decision: 'allow', reason: '', fuelUsed: 1, durationUs: 1, capabilityCalls: [], logs: [] } });
    if (workerData.mode === 'post') parentPort.on('message', (m) => parentPort.postMessage(answer(m.id)));
    else {
      const c = new Int32Array(workerData.control); let seen = 0;
      for (;;) { Atomics.wait(c, 0, seen); seen = Atomics.load(c, 0);
        for (let m = receiveMessageOnPort(workerData.jobs); m; m = receiveMessageOnPort(workerData.jobs)) {
          workerData.results.postMessage(answer(m.message.id)); Atomics.add(c, 1, 1); Atomics.notify(c, 1); } }
    }`;
  const post = new Worker(echo, { eval: true, workerData: { mode: 'post' } });
  let pending: ((m: unknown) => void) | undefined;
  post.on('message', (m) => pending?.(m));
  const viaPost = (): Promise<unknown> =>
    new Promise((r) => {
      pending = r;
      post.postMessage(job);
    });

  const c = new Int32Array(new SharedArrayBuffer(8));
  const jobs = new MessageChannel();
  const results = new MessageChannel();
  const sab = new Worker(echo, {
    eval: true,
    workerData: { mode: 'sab', control: c.buffer, jobs: jobs.port2, results: results.port2 },
    transferList: [jobs.port2, results.port2],
  });
  const waitAsync = (
    Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: unknown } }
  ).waitAsync;
  const viaSab = async (): Promise<unknown> => {
    const before = Atomics.load(c, 1);
    jobs.port1.postMessage(job);
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    const w = waitAsync(c, 1, before);
    if (w.async) await w.value;
    return receiveMessageOnPort(results.port1)?.message;
  };
  const rows = [
    { name: 'postMessage round trip', samplesUs: await sample(viaPost, ITERATIONS) },
    { name: 'SAB+Atomics round trip', samplesUs: await sample(viaSab, ITERATIONS) },
  ];
  await post.terminate();
  await sab.terminate();
  return rows;
}

export async function run(): Promise<void> {
  console.log(
    `\nengine: ${compileStepExists() ? 'policies compiled and instrumented by compilePolicy' : 'compile step absent or disabled: raw core modules, no fuel instrumentation'}; ${ITERATIONS} samples per row`,
  );
  printTable('worker transport (echo worker, job-sized message)', await transportRows(), 'postMessage round trip');

  const engine = new Engine({ workers: 2, linuxCapabilities: false, limits: { deadlineMs: 10_000 } });
  await engine.ready();
  try {
    for (const s of await subjects()) {
      engine.load(s.policy);
      const req = request();
      const spec = simulated();
      const w = world();
      const check = await engine.evaluate(s.policy.sha256, req, spec);
      const factory = new InstanceFactory(s.policy.module);
      const recycled = (): unknown => {
        const prepared = factory.prepare();
        const outcome = evaluatePrepared(prepared, req, createSimulatedCapabilities(w), s.policy.limits);
        factory.recycle(prepared);
        return outcome;
      };
      const rows: BenchRow[] = [
        {
          name: 'engine (worker pool, fresh instance)',
          samplesUs: await sample(() => engine.evaluate(s.policy.sha256, req, spec), ITERATIONS, WARMUP),
        },
        {
          name: 'in-thread (fresh instance, new memory)',
          samplesUs: await sample(
            () =>
              evaluatePrepared(
                new InstanceFactory(s.policy.module).prepare(),
                req,
                createSimulatedCapabilities(w),
                s.policy.limits,
              ),
            ITERATIONS,
            WARMUP,
          ),
        },
        { name: 'in-thread (fresh instance, recycled memory)', samplesUs: await sample(recycled, ITERATIONS, WARMUP) },
        {
          name: 'jco glue (fresh instance)',
          samplesUs: await sample(() => s.reference(req, createSimulatedCapabilities(w)), Math.min(ITERATIONS, 1000)),
        },
      ];
      printTable(
        `decision: ${s.name} (${check.decision}${check.reason ? ` ${check.reason}` : ''}, ${check.capabilityCalls.length} capability calls)`,
        rows,
        'jco glue (fresh instance)',
      );
    }
  } finally {
    await engine.close();
  }
}
