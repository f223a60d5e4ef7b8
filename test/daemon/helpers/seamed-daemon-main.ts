// A real daemon process with the engine's test seams set, for faults at moments hard to reach
// otherwise: `seamed-daemon-main.ts --json '<config>' --seams '{"exitWorkerAfterEffect":true,
// "bumpReplayedMemlock":true}'`. The seams are never reachable from configuration: only a
// program that calls startDaemon itself, like this one, can set them.
import type { EngineSeams } from '../../../runtime/engine/engine.ts';
import { checkConfigShape } from '../../../runtime/daemon/config.ts';
import { startDaemon } from '../../../runtime/daemon/daemon.ts';
import { installSignalHandlers } from '../../../runtime/daemon/signals.ts';

export interface SeamFlags {
  /** Evaluation workers exit right after an effect. */
  exitWorkerAfterEffect?: boolean;
  /** The worker replays a speculative run's set-memlock with one byte more: its run diverges. */
  bumpReplayedMemlock?: boolean;
}

const arg = (name: string): string => {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? undefined : process.argv[i + 1];
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};

const flags = JSON.parse(arg('--seams')) as SeamFlags;
const seams: EngineSeams = {
  ...(flags.exitWorkerAfterEffect === true ? { exitWorkerAfterEffect: true } : {}),
  ...(flags.bumpReplayedMemlock === true
    ? { replayTape: (tape) => tape.map((t) => (t.op === 'set-memlock' ? { ...t, bytes: t.bytes + 1n } : t)) }
    : {}),
};
try {
  const daemon = await startDaemon(checkConfigShape(JSON.parse(arg('--json')), '--json'), { engineSeams: { seams } });
  installSignalHandlers(daemon);
} catch (err) {
  process.stderr.write(`capgate (seamed): ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
