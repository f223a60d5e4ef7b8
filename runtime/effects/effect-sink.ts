// Where a capability reports, for one evaluation, the calls it makes: an effect is recorded
// before it acts (the journal for a crash of the daemon, the ledger for a worker stopped or
// dead mid-job), and a call that cannot be recorded must not act.
import type { SetMemlockIntent } from './effect-intent.ts';
import type { EffectLedgerWriter } from './effect-ledger.ts';

export interface EffectSink {
  /** Records a set-memlock about to act; throws when it cannot (the call must then not act). */
  intend(intent: SetMemlockIntent): number;
  /** The call `token` acted: errno 0 if it succeeded. */
  done(token: number, errno: number): void;
  /** A query-vm-identity answered. */
  queried(pid: number, some: boolean): void;
}

/** Where intents are written (EffectJournal.append); throws when one is not recorded. */
export interface IntentLog {
  append(contextJson: string, intent: SetMemlockIntent): void;
}

export interface EffectRecording {
  /** With `contextJson` (the decision's DecisionContext as JSON): intents go to the journal. */
  journal?: IntentLog;
  contextJson?: string;
  /** In an evaluation worker: calls are mirrored for the main side. */
  ledger?: EffectLedgerWriter;
  /** Test seam: runs right after an effect (e.g. to stop the thread there). */
  afterEffect?: () => void;
}

export function effectSink(r: EffectRecording): EffectSink {
  const { journal, contextJson, ledger, afterEffect } = r;
  return {
    intend(intent) {
      if (journal !== undefined && contextJson !== undefined) journal.append(contextJson, intent);
      return ledger?.intend(intent) ?? -1;
    },
    done(token, errno) {
      if (token >= 0) ledger?.done(token, errno);
      afterEffect?.();
    },
    queried(pid, some) {
      ledger?.queried(pid, some);
    },
  };
}
