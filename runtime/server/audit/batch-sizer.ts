// The size of the next batch of background work on the main thread (audit ingestion, indexing),
// chosen from how long the last batch took, so that a batch takes at most `budgetMs`. A batch
// over the budget shrinks the next one in proportion (the fixed cost of a transaction counted as
// if per row: it errs small); a full batch under it grows the next, at most twofold, so that one
// cheap batch (rows already parsed, pages in cache) never makes the next one huge.

export interface BatchSizerOptions {
  budgetMs: number;
  /** Default 32. */
  initial?: number;
  /** Default 1: a batch always makes progress. */
  min?: number;
  /** Default 2048. */
  max?: number;
}

export class BatchSizer {
  #size: number;
  readonly #budgetMs: number;
  readonly #min: number;
  readonly #max: number;

  constructor(options: BatchSizerOptions) {
    this.#budgetMs = options.budgetMs;
    this.#min = options.min ?? 1;
    this.#max = options.max ?? 2048;
    this.#size = this.#clamp(options.initial ?? 32);
  }

  /** Rows the next batch may take. */
  get size(): number {
    return this.#size;
  }

  /** A batch of `rows` rows took `ms` milliseconds (of the clock the budget is in). */
  observe(rows: number, ms: number): void {
    if (rows <= 0) return;
    if (ms > this.#budgetMs) this.#size = this.#clamp(Math.floor((rows * this.#budgetMs) / ms));
    else if (rows >= this.#size)
      this.#size = this.#clamp(Math.min(2 * this.#size, ms > 0 ? Math.floor((rows * this.#budgetMs) / ms) : Infinity));
  }

  #clamp(n: number): number {
    return Math.max(this.#min, Math.min(this.#max, n));
  }
}
