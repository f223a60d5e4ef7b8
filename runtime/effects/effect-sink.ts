// Where a capability reports, for one evaluation, the calls it makes: an effect is recorded
// before it acts (the journal for a crash of the daemon, the ledger for a worker stopped or
// dead mid-job), and a call that cannot be recorded must not act.
import type { IntentContext, SetMemlockIntent } from './effect-intent.ts';
import type { EffectLedgerWriter } from './effect-ledger.ts';

/** Where an intent was recorded: its ledger entry and its journal slot (-1: none). */
export interface EffectToken {
  ledger: number;
  journal: number;
}

export interface EffectSink {
  /** Records a set-memlock about to act; throws when it cannot (the call must then not act). */
  intend(intent: SetMemlockIntent): EffectToken;
  /** The call `token` acted: errno 0 if it succeeded. */
  done(token: EffectToken, errno: number): void;
  /** A query-vm-identity answered. */
  queried(pid: number, some: boolean): void;
}

/** Where intents are written (EffectJournal): append returns the slot, or throws when the intent is not recorded. */
export interface IntentLog {
  append(context: IntentContext, intent: SetMemlockIntent): number;
  clear(slot: number): void;
}

export interface EffectRecording {
  /** With `context` (the decision's DecisionContext, or its JSON): intents go to the journal. */
  journal?: IntentLog;
  context?: IntentContext;
  /** In an evaluation worker: calls are mirrored for the main side. */
  ledger?: EffectLedgerWriter;
  /** Test seam: runs right after an effect (e.g. to stop the thread there). */
  afterEffect?: () => void;
}

export function effectSink(r: EffectRecording): EffectSink {
  const { journal, context, ledger, afterEffect } = r;
  return {
    intend(intent) {
      const slot = journal !== undefined && context !== undefined ? journal.append(context, intent) : -1;
      try {
        return { ledger: ledger?.intend(intent, slot) ?? -1, journal: slot };
      } catch (err) {
        if (slot >= 0) journal?.clear(slot); // it will not act
        throw err;
      }
    },
    done(token, errno) {
      if (token.ledger >= 0) ledger?.done(token.ledger, errno);
      afterEffect?.();
    },
    queried(pid, some) {
      ledger?.queried(pid, some);
    },
  };
}
