// A real daemon process with the engine's test seams set, for faults at moments hard to reach
// otherwise: `seamed-daemon-main.ts --json '<config>' --seams '{"exitWorkerAfterEffect":true,
// "bumpReplayedMemlock":true}'`. The seams are never reachable from configuration: only a
// program that calls startDaemon itself, like this one, can set them.
import fs from 'node:fs';
import type { EngineSeams } from '../../../runtime/engine/engine.ts';
import type { JournalIo } from '../../../runtime/store/audit-journal.ts';
import { checkConfigShape } from '../../../runtime/daemon/config.ts';
import { startDaemon } from '../../../runtime/daemon/daemon.ts';
import { installSignalHandlers } from '../../../runtime/daemon/signals.ts';

export interface SeamFlags {
  /** Evaluation workers exit right after an effect. */
  exitWorkerAfterEffect?: boolean;
  /** The worker replays a speculative run's set-memlock with one byte more: its run diverges. */
  bumpReplayedMemlock?: boolean;
  /**
   * The main thread's CPU budget per turn for speculative runs (default 2 ms). A large one makes
   * fuel alone end them: a garbage collection or a first call's setup inside the run can then not
   * send it to a worker before its first host call.
   */
  inlineBudgetMs?: number;
  /** While this file exists, every fdatasync of the audit journal fails with EIO (durability 'full'). */
  journalSyncFailsWhile?: string;
  /**
   * While this file exists, every fdatasync of the audit journal is held (then runs for real);
   * the daemon creates `<file>.held` when it holds one.
   */
  journalSyncHeldWhile?: string;
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
const { journalSyncFailsWhile: failWhile, journalSyncHeldWhile: holdWhile } = flags;
const journalIo: Partial<JournalIo> = {
  fdatasync: (fd, done) => {
    if (failWhile !== undefined && fs.existsSync(failWhile)) {
      const err = Object.assign(new Error('EIO: i/o error, fdatasync (seam)'), { code: 'EIO' });
      setImmediate(() => done(err));
      return;
    }
    if (holdWhile !== undefined && fs.existsSync(holdWhile)) {
      fs.writeFileSync(`${holdWhile}.held`, '');
      const poll = (): void => void (fs.existsSync(holdWhile) ? setTimeout(poll, 5) : fs.fdatasync(fd, done));
      poll();
      return;
    }
    fs.fdatasync(fd, done);
  },
};
try {
  const daemon = await startDaemon(checkConfigShape(JSON.parse(arg('--json')), '--json'), {
    engineSeams: { seams, ...(flags.inlineBudgetMs !== undefined ? { inlineBudgetMs: flags.inlineBudgetMs } : {}) },
    ...(failWhile !== undefined || holdWhile !== undefined ? { journalIo } : {}),
  });
  installSignalHandlers(daemon);
} catch (err) {
  process.stderr.write(`capgate (seamed): ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
