// Which bytes killed a compile process, so that bytes that kill it every time are refused rather
// than answered "try again" for ever (compile-process.ts decides what counts as their death).
// Bounded: the most recent MAX_REMEMBERED hashes, the oldest forgotten first, so a stream of
// distinct crashing uploads costs a fixed few KB. A hash is forgotten, too, once its bytes
// compile: a success shows that the bytes can be compiled, so the deaths were not (only) theirs
// (the OOM killer choosing the compile process twice, say), and an attacker gains nothing by it:
// bytes that compiled are a policy like any other.

/** Hashes remembered; with one counted death each, far more than an admin's or a directory's retries hold at once. */
export const MAX_REMEMBERED = 32;

export interface CompileDeath {
  /** Compile processes these bytes were seen to kill. */
  deaths: number;
  /** How the last one ended (` (SIGSEGV)`, ` (exit code 134): …`). */
  how: string;
}

export class CompileDeaths {
  readonly #bySha = new Map<string, CompileDeath>();

  /** Counts one more death of a compile process while compiling the bytes of `sha256`. */
  record(sha256: string, how: string): CompileDeath {
    const death = { deaths: (this.#bySha.get(sha256)?.deaths ?? 0) + 1, how };
    // Deleted first: a Map keeps insertion order, so the first key is the least recently counted.
    this.#bySha.delete(sha256);
    this.#bySha.set(sha256, death);
    if (this.#bySha.size > MAX_REMEMBERED) this.#bySha.delete(this.#bySha.keys().next().value!);
    return death;
  }

  /** The bytes of `sha256` compiled. */
  forget(sha256: string): void {
    this.#bySha.delete(sha256);
  }

  get size(): number {
    return this.#bySha.size;
  }
}
