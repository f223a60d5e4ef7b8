// A key's share of a resource while other keys want it too: a token bucket of `burstMs`, refilled
// `share` ms per ms. Both schedulers hold a VM to its share so: the evaluation scheduler (one
// core's time, fair-scheduler.ts) and the main thread's turn queue (its time, turn-queue.ts).
// A key is held while its bucket is not positive and another key is asking; alone, it is never
// held, and its bucket drains to 0 at most (no debt for time nobody else wanted), so that a key
// that was flooding before another arrived has no burst left when it does.

/** One key's bucket: its level (ms), as refilled up to `at`. */
export interface Bucket {
  tokens: number;
  tokensAt: number;
}

export class ShareBucket {
  constructor(
    /** Ms of the resource per ms of time a key may use while another asks; >= 1: no pacing. */
    readonly share: number,
    /** What a key may spend at once above its share (ms). */
    readonly burstMs: number,
  ) {}

  get pacing(): boolean {
    return this.share < 1;
  }

  /** A full bucket. */
  full(now: number): Bucket {
    return { tokens: this.burstMs, tokensAt: now };
  }

  /** Its level at `now` (ms). */
  level(b: Bucket, now: number): number {
    return Math.min(this.burstMs, b.tokens + (now - b.tokensAt) * this.share);
  }

  /** Takes `ms` from it; alone (`contended` false) it drains to 0 at most. */
  draw(b: Bucket, now: number, ms: number, contended: boolean): void {
    const before = this.level(b, now);
    const after = before - ms;
    b.tokens = contended ? after : Math.max(after, Math.min(0, before));
    b.tokensAt = now;
  }

  /** Until the bucket at `level` is positive again (ms; > 0). */
  refillMs(level: number): number {
    return Math.max(0, -level) / this.share + 1;
  }

  /**
   * When a key held back may go again: its bucket positive, or nobody else asking (`contendedUntil`:
   * until when another key counts as asking, <= now: none is). <= now: it is not held.
   */
  heldUntil(b: Bucket, now: number, contendedUntil: number): number {
    if (!this.pacing) return -Infinity;
    const level = this.level(b, now);
    if (level > 0 || contendedUntil <= now) return -Infinity;
    return Math.min(contendedUntil, now + this.refillMs(level));
  }
}
