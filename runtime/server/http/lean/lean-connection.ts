// One accepted connection of the lean server: parses requests from its buffer synchronously in
// the data callback, hands them one at a time to the handler, writes each answer in one write.
// Bytes pipelined behind a request wait in the buffer (reading pauses past header + body caps)
// and are parsed once the answer is written. One timer per connection, re-armed only when a
// deadline moves earlier: in steady keep-alive use no timer is touched per request.
// With a turn queue (the request socket's), a complete request is handed to it under the
// connection's payer, and runs when the queue says (turn-queue.ts): at once, or in a later check
// phase of the event loop, in fair order between payers.
import type net from 'node:net';
import type { Logger } from 'pino';
import { payloadTooLarge } from '../body.ts';
import { encodeReply, fail, type Reply } from '../reply.ts';
import type { HttpLimits } from '../unix-server.ts';
import type { TurnJob, TurnQueue, TurnRefusal } from '../../scheduler/turn-queue.ts';
import { InputBuffer } from './input-buffer.ts';
import type { LeanHandler, LeanRequest } from './lean-request.ts';
import { parseRequestHead, refuse, type RequestHead } from './request-head.ts';
import { HeadStrings } from './request-head-fast.ts';

/** What a connection needs from its server. */
export interface ConnectionContext<P> {
  name: string;
  limits: HttpLimits;
  maxBodyBytes: number;
  handler: LeanHandler<P>;
  logger: Logger;
  /** The server is shutting down: answer what is in flight, then close. */
  readonly closing: boolean;
  /** Where complete requests wait for their turn on the main thread; none: they run at once. */
  turns?: RequestTurns;
}

/** The main thread's fair queue of requests, and the answer to one it refuses (never run). */
export interface RequestTurns {
  queue: TurnQueue;
  /** `retryAfterMs`: for 'vm-rate-limited', when the VM's share allows it again. */
  refusal(reason: TurnRefusal, retryAfterMs?: number): Reply;
}

/**
 * idle: between requests; head/body: a request is arriving; handling: the handler runs;
 * closing: the last answer is written, the connection ends.
 */
type Phase = 'idle' | 'head' | 'body' | 'handling' | 'closing';

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

export class LeanConnection<P> implements TurnJob {
  private readonly input = new InputBuffer();
  /** The previous head's strings, reused by the next head with the same bytes (request-head-fast.ts). */
  private readonly headStrings = new HeadStrings();
  private phase: Phase = 'idle';
  private scanned = 0;
  private head: RequestHead | null = null;
  private requestStart = 0;
  private continued = false;
  private peerEnded = false;
  private waitingForDrain = false;
  /** performance.now() at which the current phase times out; 0 = none. */
  private deadline = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  /** performance.now() when the connection last became idle (ConnectionBudget's "oldest idle"). */
  idleSince = performance.now();

  constructor(
    readonly socket: net.Socket,
    private readonly peer: P,
    private readonly o: ConnectionContext<P>,
    /** False: closed after its first answer (peers in no VM; see connection-budget.ts). */
    private readonly keepAlive = true,
    /** Whose turn on the main thread its requests take (turn-queue.ts). */
    private readonly payer = '',
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => {
      o.logger.debug({ err, channel: o.name }, 'connection error');
      socket.destroy();
    });
    socket.on('close', () => {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.deadline = 0;
    });
    // A connection that never sends a byte may not hold a slot.
    this.setDeadline(performance.now() + o.limits.headersTimeoutMs);
  }

  /** No request under way and no answer waiting to be written: closing it loses nothing. */
  get idle(): boolean {
    return this.phase === 'idle' && this.input.length === 0 && !this.waitingForDrain;
  }

  /** Closes the connection now if no request is under way (server shutdown). */
  closeIfIdle(): void {
    if (this.idle) this.socket.destroy();
  }

  /** Closed to make room for another connection (connection-budget.ts). */
  evict(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closing') return;
    this.input.append(chunk);
    if (this.phase === 'handling' || this.waitingForDrain) {
      if (this.input.length > this.o.limits.maxHeaderBytes + this.o.maxBodyBytes) this.socket.pause();
      return;
    }
    this.advance();
  }

  private onEnd(): void {
    this.peerEnded = true;
    if (this.phase === 'handling' || this.phase === 'closing') return; // the answer closes
    if (this.phase === 'idle' && this.input.length === 0 && !this.waitingForDrain) this.socket.end();
    else if (!this.waitingForDrain) this.socket.destroy(); // a partial request can never complete
  }

  private onDrain(): void {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.socket.resume();
    if (this.peerEnded && this.input.length === 0) return void this.socket.end();
    this.advance();
  }

  /** Parses and dispatches what the buffer holds, as far as it goes. */
  private advance(): void {
    for (;;) {
      if (this.phase === 'idle') {
        this.skipEmptyLines();
        if (this.input.length === 0) return;
        this.phase = 'head';
        this.requestStart = performance.now();
        this.scanned = 0;
      }
      if (this.phase === 'head') {
        const parsed = parseRequestHead(
          this.input.view(),
          this.scanned,
          this.o.limits.maxHeaderBytes,
          this.headStrings,
        );
        if (parsed.kind === 'incomplete') {
          this.scanned = parsed.scanned;
          return this.setDeadline(this.requestStart + this.o.limits.headersTimeoutMs);
        }
        if (parsed.kind === 'refused') return this.refuseAsRead(parsed.reply);
        this.input.skip(parsed.head.size);
        this.head = parsed.head;
        // Answered without reading the body, and closed: its bytes cannot be told from a next request.
        if (parsed.head.contentLength > this.o.maxBodyBytes)
          return this.refuseAsRead(payloadTooLarge(this.o.maxBodyBytes));
        this.phase = 'body';
        this.continued = false;
      }
      if (this.phase !== 'body') return;
      const head = this.head!;
      if (this.input.length < head.contentLength) {
        if (head.expectContinue && !this.continued) {
          this.continued = true;
          this.socket.write(CONTINUE);
        }
        return this.setDeadline(this.requestStart + this.o.limits.requestTimeoutMs);
      }
      const body = this.input.take(head.contentLength);
      if (!this.submit(head, body)) return;
      // Answered synchronously: go on with pipelined bytes unless the answer closed or filled the socket.
      if ((this.phase as Phase) !== 'idle' || this.waitingForDrain) return;
    }
  }

  /**
   * Runs the request now or queues it for its turn; true when it was answered synchronously.
   * The connection is the turn queue's job itself (run, refuse): it has one request under way at
   * a time, kept in `turn`, so a request costs no job object and no closures.
   */
  private submit(head: RequestHead, body: Buffer): boolean {
    const turns = this.o.turns;
    if (turns === undefined) return this.dispatch(head, body);
    const turn = this.turn;
    turn.head = head;
    turn.body = body;
    turn.queued = false;
    turn.answered = false;
    turn.readAt = performance.now();
    const admission = turns.queue.submit(this.payer, this);
    if (admission === 'ran') return turn.answered;
    if (admission === 'queued') {
      turn.queued = true;
      this.phase = 'handling';
      this.deadline = 0;
      return false;
    }
    this.clearTurn();
    this.answer(head, turns.refusal(admission));
    return true;
  }

  /** The request handed to the turn queue, until it runs or is refused (TurnJob). */
  private readonly turn: {
    head: RequestHead | null;
    body: Buffer | null;
    /** It waited in the queue (it did not run inside submit). */
    queued: boolean;
    /** It ran inside submit and was answered synchronously. */
    answered: boolean;
    /** performance.now() when it was read. */
    readAt: number;
  } = { head: null, body: null, queued: false, answered: false, readAt: 0 };

  /** Nothing of the request handed to the turn queue stays behind in the connection. */
  private clearTurn(): void {
    this.turn.head = null;
    this.turn.body = null;
  }

  /** TurnJob: the request's turn has come. */
  run(): void {
    const turn = this.turn;
    const head = turn.head!;
    const body = turn.body!;
    this.clearTurn();
    if (!turn.queued) return void (turn.answered = this.dispatch(head, body));
    // The client went away while it waited: nobody would read the answer, nothing is run.
    if (this.socket.destroyed) return;
    if (this.dispatch(head, body, performance.now() - turn.readAt)) this.goOn();
  }

  /** TurnJob: it waited past its deadline; answered without running. */
  refuse(reason: 'deadline' | 'vm-rate-limited', retryAfterMs: number): void {
    const head = this.turn.head!;
    this.clearTurn();
    this.answer(head, this.o.turns!.refusal(reason, retryAfterMs));
    this.goOn();
  }

  /** After an answer written outside advance(): parse what was pipelined behind it. */
  private goOn(): void {
    if (this.phase === 'idle' && !this.waitingForDrain) this.advance();
  }

  /** Runs the handler (`waitedMs`: how long the request waited for its turn); true when it answered synchronously. */
  private dispatch(head: RequestHead, body: Buffer, waitedMs = 0): boolean {
    this.phase = 'handling';
    this.deadline = 0;
    if (this.o.closing) {
      this.write(fail('shutting-down', 'the daemon is shutting down', 'retry against the restarted daemon'), true);
      return true;
    }
    let result: Reply | Promise<Reply>;
    try {
      result = this.o.handler(new ReceivedRequest(head, body, this.peer, waitedMs));
    } catch (err) {
      this.failed(err, head);
      return true;
    }
    if (!(result instanceof Promise)) {
      this.answer(head, result);
      return true;
    }
    // One request at a time per connection: its head waits here for the answer, which the
    // connection's own callbacks take (no closures per request).
    this.answering = head;
    result.then(this.onAnswer, this.onHandlerFailure);
    return false;
  }

  private answering: RequestHead | null = null;

  private readonly onAnswer = (reply: Reply): void => {
    const head = this.answering!;
    this.answering = null;
    this.answer(head, reply);
    this.goOn();
  };

  private readonly onHandlerFailure = (err: unknown): void => {
    const head = this.answering!;
    this.answering = null;
    this.failed(err, head);
  };

  private answer(head: RequestHead, reply: Reply): void {
    // A HEAD request's client would not expect our body: end the connection after it.
    const close = !head.keepAlive || !this.keepAlive || this.o.closing || this.peerEnded || head.method === 'HEAD';
    this.write(reply, close);
  }

  private failed(err: unknown, head: RequestHead): void {
    this.o.logger.error({ err, channel: this.o.name, path: head.path }, 'handler failed');
    this.write(fail('internal', 'internal error; see the daemon log'), true);
  }

  /** A request refused as it was read, never handed to the turn queue: the work is its payer's
   * all the same (TurnQueue.noteWork), and the connection is closed. */
  private refuseAsRead(reply: Reply): void {
    this.o.turns?.queue.noteWork(this.payer);
    this.write(reply, true);
  }

  private write(reply: Reply, close: boolean): void {
    this.head = null;
    if (this.socket.destroyed) return;
    const message = encodeReply(reply, close, Math.floor(this.o.limits.keepAliveTimeoutMs / 1000));
    if (close) {
      this.phase = 'closing';
      this.input.clear();
      this.socket.end(message);
      // A client that never closes its side may not hold the slot.
      this.setDeadline(performance.now() + this.o.limits.headersTimeoutMs);
      return;
    }
    this.phase = 'idle';
    this.idleSince = performance.now();
    if (!this.socket.write(message)) {
      this.waitingForDrain = true;
      this.socket.pause();
    } else if (this.socket.isPaused()) {
      this.socket.resume();
    }
    this.setDeadline(performance.now() + this.o.limits.keepAliveTimeoutMs);
  }

  private skipEmptyLines(): void {
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line.
    while (this.input.at(0) === 13 && this.input.at(1) === 10) this.input.skip(2);
  }

  private setDeadline(at: number): void {
    this.deadline = at;
    // An armed timer firing earlier re-arms itself for the rest; only an earlier deadline re-arms now.
    if (this.timer !== null && this.timerAt <= at) return;
    this.arm(at);
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(at - performance.now())));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.deadline === 0 || this.socket.destroyed) return;
    if (performance.now() < this.deadline) return this.arm(this.deadline);
    this.expire();
  };

  private expire(): void {
    const l = this.o.limits;
    switch (this.phase) {
      case 'head':
        return this.refuseAsRead(
          refuse(
            408,
            `the request head did not arrive within ${l.headersTimeoutMs} ms`,
            'send the whole request at once',
          ),
        );
      case 'body':
        return this.refuseAsRead(
          refuse(
            408,
            `the request did not arrive within ${l.requestTimeoutMs} ms`,
            'send the body right after the headers',
          ),
        );
      default:
        // idle (nothing asked, or keep-alive expired) or closing: nobody waits for an answer.
        this.socket.destroy();
    }
  }
}

/** What the handler gets: the query is parsed only if it is read (the request socket's routes never do). */
class ReceivedRequest<P> implements LeanRequest<P> {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  #query: URLSearchParams | undefined;
  readonly #queryString: string;

  constructor(
    head: RequestHead,
    readonly body: Buffer,
    readonly peer: P,
    readonly waitedMs: number,
  ) {
    this.method = head.method;
    this.path = head.path;
    this.headers = head.headers;
    this.#queryString = head.queryString;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.#queryString));
  }
}
