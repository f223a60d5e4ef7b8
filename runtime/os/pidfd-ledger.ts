// The pidfds an evaluation worker has open, mirrored into shared memory. A worker stopped by
// terminate() (a policy past its deadline) runs no finally blocks and no release(): without
// this, every such evaluation would leak the pidfds it held, and a policy that times out on
// purpose could exhaust the daemon's file descriptors. The main side closes what the ledger
// still lists once the thread has exited. A slot is cleared before its fd is closed, so a
// thread killed in between leaks one fd rather than letting anyone close a reused number.
import { closeSync } from 'node:fs';

/** Slots per worker: the thread's recent members (128) and one evaluation's kept targets (16),
 * plus transient ones, with room to spare. */
export const PIDFD_LEDGER_SLOTS = 256;

export function newPidfdLedger(): SharedArrayBuffer {
  return new SharedArrayBuffer(PIDFD_LEDGER_SLOTS * 4);
}

let ledger: Int32Array | undefined;

/** In a worker: from now on, every pidfd this thread opens or closes is noted in `shared`. */
export function mirrorPidfdsInto(shared: SharedArrayBuffer): void {
  ledger = new Int32Array(shared);
}

/** Slots hold fd + 1, so that 0 means free. A full ledger notes nothing (bounded, fail-safe). */
export function notePidfdOpened(fd: number): void {
  if (ledger === undefined) return;
  for (let i = 0; i < ledger.length; i++) if (Atomics.compareExchange(ledger, i, 0, fd + 1) === 0) return;
}

export function notePidfdClosing(fd: number): void {
  if (ledger === undefined) return;
  for (let i = 0; i < ledger.length; i++) {
    if (Atomics.load(ledger, i) === fd + 1) {
      Atomics.store(ledger, i, 0);
      return;
    }
  }
}

/** On the main side, after the worker's thread has exited: closes what it left open. */
export function closeLeftoverPidfds(shared: SharedArrayBuffer): number {
  const slots = new Int32Array(shared);
  let closed = 0;
  for (let i = 0; i < slots.length; i++) {
    const v = Atomics.exchange(slots, i, 0);
    if (v === 0) continue;
    try {
      closeSync(v - 1);
      closed++;
    } catch {
      // already closed: nothing to do
    }
  }
  return closed;
}
