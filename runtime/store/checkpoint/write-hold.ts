// The checkpoint worker's request to the main thread to start no background write for a moment.
// SQLite starts the write-ahead log again from its beginning only in a write transaction that
// begins once every frame in it has been copied back, with no other commit in between. A PASSIVE
// checkpoint never blocks a writer, so under sustained writes a batch of the main thread is
// nearly always under way when a pass ends, commits after it, and the file grows without bound
// (measured: 47 MB of WAL for a 20 MB database). So the worker copies the bulk freely, then
// raises the hold, waits for the batch under way (if any, at most one: each is bounded in time)
// and copies what is left: the main thread starts no batch meanwhile (it defers it; it never
// waits), and its next batch starts the log again. A hold counts only while it is fresh
// (MAX_HOLD_MS): a worker stuck in a pass, or gone, never holds the audit back longer.
// Shared Int32 slots: [raised, when raised (ms of Date.now, modulo 2^31), main thread writing].

const SLOTS = 3;
const RAISED = 0;
const WHEN = 1;
const WRITING = 2;
/** How long a hold counts at most, from when it was raised. */
export const MAX_HOLD_MS = 200;
const MOD = 2 ** 31;

/** The main thread's side, as the audit writer uses it around each write it could defer. */
export interface WriteGate {
  /** False while the hold is up (then defer the write); true: write, then leave(). */
  tryEnter(): boolean;
  leave(): void;
}

export function newWriteHold(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * 4);
}

export class WriteHold implements WriteGate {
  readonly #slots: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#slots = new Int32Array(buffer);
  }

  /** Worker: raises the hold and waits (at most `maxWaitMs`) for a write under way to end. */
  raise(maxWaitMs: number): void {
    Atomics.store(this.#slots, WHEN, Date.now() % MOD);
    Atomics.store(this.#slots, RAISED, 1);
    const until = Date.now() + maxWaitMs;
    for (let left = maxWaitMs; Atomics.load(this.#slots, WRITING) === 1 && left > 0; left = until - Date.now())
      Atomics.wait(this.#slots, WRITING, 1, left);
  }

  lower(): void {
    Atomics.store(this.#slots, RAISED, 0);
  }

  /** Raised, and not longer ago than MAX_HOLD_MS. */
  get held(): boolean {
    if (Atomics.load(this.#slots, RAISED) !== 1) return false;
    const age = (Date.now() % MOD) - Atomics.load(this.#slots, WHEN);
    return (age < 0 ? age + MOD : age) < MAX_HOLD_MS;
  }

  // Marked writing first, then the hold read (the worker raises first, then reads the mark): of
  // two racing, at least one sees the other.
  tryEnter(): boolean {
    Atomics.store(this.#slots, WRITING, 1);
    if (!this.held) return true;
    this.leave();
    return false;
  }

  leave(): void {
    Atomics.store(this.#slots, WRITING, 0);
    Atomics.notify(this.#slots, WRITING);
  }
}
