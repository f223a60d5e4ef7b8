// Numbers a diagnostic preload records while the daemon runs (daemon-trace.ts, idle-trace.ts), kept
// where recording one never copies the ones before it. A plain array grows by copying its whole
// backing store into a new one (1.5x as large), and a large one is fresh memory: pushing to a trace
// array of a few MB inside a span it measured cost that span one page fault per 4 KiB copied
// (3,439 faults and 8 ms of the main thread's CPU time in one speculative run, measured: the
// "guest turns over 5 ms without a GC" of the traced isolation runs were the trace's own arrays).
// Here the numbers go into fixed chunks; the next chunk is made ahead, in an immediate (outside any
// span), once the current one is three quarters full, so a record writes one number into memory
// that is already there (a page fault per 512 numbers, when a chunk's page is first written).

export class NumberLog {
  readonly #chunkLength: number;
  readonly #chunks: Float64Array[] = [];
  #chunk: Float64Array;
  /** Numbers in the current chunk. */
  #at = 0;
  #next: Float64Array | undefined;
  #nextScheduled = false;
  /** Chunks made at a record because none was ready (the immediate had not run yet). */
  madeInline = 0;

  constructor(chunkLength = 1 << 16) {
    if (!Number.isSafeInteger(chunkLength) || chunkLength < 4) throw new RangeError(`chunk length ${chunkLength}`);
    this.#chunkLength = chunkLength;
    this.#chunk = new Float64Array(chunkLength);
    this.#chunks.push(this.#chunk);
  }

  get length(): number {
    return (this.#chunks.length - 1) * this.#chunkLength + this.#at;
  }

  push(x: number): void {
    if (this.#at === this.#chunkLength) this.#advance();
    this.#chunk[this.#at++] = x;
    if (this.#at === (this.#chunkLength * 3) >> 2 && this.#next === undefined && !this.#nextScheduled) {
      this.#nextScheduled = true;
      setImmediate(() => {
        this.#nextScheduled = false;
        this.#next ??= new Float64Array(this.#chunkLength);
      });
    }
  }

  /** Sets a number already recorded (index < length). */
  set(index: number, x: number): void {
    if (!(index >= 0 && index < this.length)) throw new RangeError(`index ${index} of ${this.length}`);
    this.#chunks[Math.floor(index / this.#chunkLength)]![index % this.#chunkLength] = x;
  }

  get(index: number): number {
    if (!(index >= 0 && index < this.length)) throw new RangeError(`index ${index} of ${this.length}`);
    return this.#chunks[Math.floor(index / this.#chunkLength)]![index % this.#chunkLength]!;
  }

  /** Every number, in order (NaN stays NaN; JSON.stringify writes it as null). */
  toArray(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!;
      const n = c === this.#chunks.length - 1 ? this.#at : this.#chunkLength;
      for (let i = 0; i < n; i++) out.push(chunk[i]!);
    }
    return out;
  }

  #advance(): void {
    let next = this.#next;
    this.#next = undefined;
    if (next === undefined) {
      this.madeInline++;
      next = new Float64Array(this.#chunkLength);
    }
    this.#chunk = next;
    this.#chunks.push(next);
    this.#at = 0;
  }
}
