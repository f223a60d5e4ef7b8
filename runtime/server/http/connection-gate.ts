// New connections to the admin socket wait, accepted but unread, while its body budget
// (byte-rate-budget.ts) is in debt. A connection's first read (its head, and whatever body the
// socket holds: 64 KiB and more) comes before any route can pause its body, so a flood opening a
// connection per upload had those bytes read on the main thread at full speed (4.8 mark-compacts
// a second, measured). Here each connection is handed to the HTTP parser only once the debt is
// paid, in arrival order, and pays its first read in advance (given back once it is answered:
// byte-rate-budget.ts, advance/settle), so the next one waits for that too.
//
// The socket must be accepted paused (net.Server's pauseOnConnect) and admitted by resume():
// a socket pausing itself in its 'connection' event was never read again, because Node's HTTP
// server had already taken over its reads.
//
// A wait is bounded: a connection that would wait longer than maxWaitMs, or find maxWaiting ahead
// of it, is refused at once, unread, with a Retry-After (unix-server.ts writes the answer).
import type net from 'node:net';
import type { ByteRateBudget } from './byte-rate-budget.ts';

/** What a new connection pays in advance: a read of a socket is at most 64 KiB (libuv's buffer). */
export const FIRST_READ_BYTES = 64 * 1024;

export interface GateLimits {
  /** Connections waiting at once; one more is refused. */
  maxWaiting: number;
  /** The longest wait a connection is given (ms); one that would wait longer is refused. */
  maxWaitMs: number;
}

export interface GateRefusal {
  why: 'too-many-waiting' | 'wait-too-long' | 'closing';
  /** When the budget should have room for it again (s, at least 1). */
  retryAfterS: number;
}

interface Waiting {
  socket: net.Socket;
  admit(): void;
  refuse(refusal: GateRefusal): void;
}

export class ConnectionGate {
  readonly #budget: ByteRateBudget;
  readonly #limits: GateLimits;
  readonly #waiting: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(budget: ByteRateBudget, limits: GateLimits) {
    this.#budget = budget;
    this.#limits = limits;
  }

  /** Connections waiting now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * `socket` (accepted paused) is admitted (admit(), which resumes it) at once if the budget is
   * out of debt and no connection waits; else once the ones before it are and the debt is paid;
   * or refused at once (refuse()) if that would be too long, or too many wait.
   */
  enter(socket: net.Socket, admit: () => void, refuse: (refusal: GateRefusal) => void): void {
    const ahead = this.#waiting.length;
    // Each connection ahead pays a first read before this one can.
    const waitMs = this.#budget.waitFor(ahead * FIRST_READ_BYTES);
    const retryAfterS = Math.max(1, Math.ceil(waitMs / 1000));
    if (this.#closed) return refuse({ why: 'closing', retryAfterS });
    if (ahead === 0 && waitMs === 0) return this.#admit({ socket, admit, refuse });
    if (ahead >= this.#limits.maxWaiting) return refuse({ why: 'too-many-waiting', retryAfterS });
    if (waitMs > this.#limits.maxWaitMs) return refuse({ why: 'wait-too-long', retryAfterS });
    this.#waiting.push({ socket, admit, refuse });
    this.#schedule();
  }

  /** Refuses every waiting connection (the server is closing) and admits no more. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiting.splice(0)) if (!w.socket.destroyed) w.refuse({ why: 'closing', retryAfterS: 1 });
  }

  #admit(w: Waiting): void {
    this.#budget.advance(w.socket, FIRST_READ_BYTES);
    w.socket.once('close', () => this.#budget.settle(w.socket));
    w.admit();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#waiting.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#admitPaid();
    }, this.#budget.waitFor(0));
  }

  /** Admits waiting connections in order while the budget is out of debt. */
  #admitPaid(): void {
    while (this.#waiting.length > 0 && this.#budget.waitFor(0) === 0) {
      const w = this.#waiting.shift()!;
      if (!w.socket.destroyed) this.#admit(w);
    }
    this.#schedule();
  }
}
