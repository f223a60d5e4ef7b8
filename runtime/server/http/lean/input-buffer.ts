// The unparsed bytes of one connection. A request that arrives in one chunk is parsed from that
// chunk without copying; pieces are gathered into storage that grows by doubling, so a request
// sent byte by byte costs linear time. Bytes handed out by take() are never written again
// (appends go past them or into new storage), so a body can outlive later reads.

const EMPTY = Buffer.alloc(0);

export class InputBuffer {
  private store: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  /** The storage is ours (not a chunk from the socket), so free space after `end` may be filled. */
  private owned = false;

  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Buffer): void {
    const length = this.length;
    if (length === 0) {
      this.store = chunk;
      this.start = 0;
      this.end = chunk.length;
      this.owned = false;
      return;
    }
    if (this.owned && this.end + chunk.length <= this.store.length) {
      chunk.copy(this.store, this.end);
      this.end += chunk.length;
      return;
    }
    const next = Buffer.allocUnsafe(Math.max(2 * (length + chunk.length), 4096));
    this.store.copy(next, 0, this.start, this.end);
    chunk.copy(next, length);
    this.store = next;
    this.start = 0;
    this.end = length + chunk.length;
    this.owned = true;
  }

  /** The unparsed bytes; valid until the next append. (The chunk itself when they are all of it,
   * as a request read in one chunk is when its head is parsed: no view made for it.) */
  view(): Buffer {
    if (this.start === 0 && this.end === this.store.length) return this.store;
    return this.store.subarray(this.start, this.end);
  }

  /** Removes and returns the first `n` bytes. */
  take(n: number): Buffer {
    const taken = this.store.subarray(this.start, this.start + n);
    this.skip(n);
    return taken;
  }

  /** Removes the first `n` bytes (take() without the view of them: a Buffer object each). */
  skip(n: number): void {
    this.start += n;
    if (this.start === this.end) this.clear();
  }

  /** The byte at `i` of the unparsed bytes (undefined past them). */
  at(i: number): number | undefined {
    return i < this.length ? this.store[this.start + i] : undefined;
  }

  clear(): void {
    this.store = EMPTY;
    this.start = this.end = 0;
    this.owned = false;
  }
}
