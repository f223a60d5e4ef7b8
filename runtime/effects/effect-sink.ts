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
  return new Sink(r);
}

/** One per evaluation, its methods on the prototype (an object of three closures cost ~0.2 KB). */
class Sink implements EffectSink {
  readonly #journal: IntentLog | undefined;
  readonly #context: IntentContext | undefined;
  readonly #ledger: EffectLedgerWriter | undefined;
  readonly #afterEffect: (() => void) | undefined;

  constructor(r: EffectRecording) {
    this.#journal = r.journal;
    this.#context = r.context;
    this.#ledger = r.ledger;
    this.#afterEffect = r.afterEffect;
  }

  intend(intent: SetMemlockIntent): EffectToken {
    const journal = this.#journal;
    const slot = journal !== undefined && this.#context !== undefined ? journal.append(this.#context, intent) : -1;
    try {
      return { ledger: this.#ledger?.intend(intent, slot) ?? -1, journal: slot };
    } catch (err) {
      if (slot >= 0) journal?.clear(slot); // it will not act
      throw err;
    }
  }

  done(token: EffectToken, errno: number): void {
    if (token.ledger >= 0) this.#ledger?.done(token.ledger, errno);
    this.#afterEffect?.();
  }

  queried(pid: number, some: boolean): void {
    this.#ledger?.queried(pid, some);
  }
}
