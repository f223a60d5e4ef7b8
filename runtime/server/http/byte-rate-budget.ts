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

  constructor(bytesPerSecond: number, burstBytes: number, now: () => number = () => performance.now()) {
    this.#bytesPerMs = bytesPerSecond / 1000;
    this.#burst = burstBytes;
    this.#now = now;
    this.#tokens = burstBytes;
    this.#at = now();
  }

  /** Pays for `bytes` already read; returns how long to wait before reading more (ms; 0: at once). */
  spend(bytes: number): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#bytesPerMs);
    this.#at = now;
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#bytesPerMs);
  }
}
