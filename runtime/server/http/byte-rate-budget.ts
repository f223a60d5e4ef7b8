// What the admin socket's policy uploads may cost the daemon's main thread, priced by the byte:
// a token bucket of bytes (admin.uploadBytesPerSecond, admin.uploadBurstBytes) that every upload
// body pays for as it is read, and a body that overdraws it is paused (readBody) until the debt is
// paid back, so the socket is read no faster than the budget: the sender waits, not the daemon.
//
// Why bytes: what an upload costs the main thread beyond a fixed part per request is its bytes'
// ArrayBuffers (the socket's reads, the body they are copied into). V8 counts ArrayBuffer bytes
// allocated since the last mark-compact against the old generation's allocation limit, and the
// daemon's heap is small: ~8 MB of them start a full mark-compact (5-15 ms of the main thread,
// during which no VM is answered). An admin pushing a refused 200 KB module in a loop (nothing
// else bounded it: each refusal is quick) made 7.5 of them a second, and another VM's p99 3-6x
// the machine's. Under the budget, uploads can make at most ~2 x uploadBytesPerSecond / 8 MB of
// them a second, whatever the sender does: at the default, 1 MiB/s, about one every 4 s (at
// 2 MiB/s, one every 2 s still showed in another VM's p99 over 500 decisions a second). One
// upload up to the burst is not slowed at all; the example policies are 6-26 KB.
export class ByteRateBudget {
  readonly #bytesPerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  /** Bytes that may be read now; negative: a debt, paid back at the rate. */
  #tokens: number;
  #at: number;
  /** Bytes paid in advance for what a payer (a new connection) will read, not yet read. */
  readonly #advances = new WeakMap<object, number>();

  constructor(bytesPerSecond: number, burstBytes: number, now: () => number = () => performance.now()) {
    this.#bytesPerMs = bytesPerSecond / 1000;
    this.#burst = burstBytes;
    this.#now = now;
    this.#tokens = burstBytes;
    this.#at = now();
  }

  /**
   * Pays for `bytes` already read; returns how long to wait before reading more (ms; 0: at once).
   * Bytes `payer` paid for in advance (advance()) are taken from that first.
   */
  spend(bytes: number, payer?: object): number {
    const advance = payer === undefined ? 0 : (this.#advances.get(payer) ?? 0);
    if (advance > 0) {
      const covered = Math.min(advance, bytes);
      this.#advances.set(payer!, advance - covered);
      bytes -= covered;
    }
    this.#refill();
    this.#tokens -= bytes;
    return this.#msFor(-this.#tokens);
  }

  /**
   * Pays now for up to `bytes` that `payer` will read (a new connection's first read, before any
   * body is there to pay for): what it then reads is paid from this first, and settle() gives
   * back what it did not read.
   */
  advance(payer: object, bytes: number): void {
    this.spend(bytes);
    this.#advances.set(payer, (this.#advances.get(payer) ?? 0) + bytes);
  }

  /** Gives back what is left of `payer`'s advance (its first request is answered, or it closed). */
  settle(payer: object): void {
    const left = this.#advances.get(payer) ?? 0;
    this.#advances.delete(payer);
    if (left <= 0) return;
    this.#refill();
    this.#tokens = Math.min(this.#burst, this.#tokens + left);
  }

  /** How long until `bytes` more could be paid without a debt (ms; 0: now), if nothing else is spent. */
  waitFor(bytes: number): number {
    this.#refill();
    return this.#msFor(bytes - this.#tokens);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#bytesPerMs);
    this.#at = now;
  }

  #msFor(owed: number): number {
    return owed > 0 ? Math.ceil(owed / this.#bytesPerMs) : 0;
  }
}
