// Who may hold the request socket's connections. Every connection counts against its holder (a
// VM, or the uid of a peer in no VM) and, for peers in no VM, against a budget they share; the
// socket as a whole has a cap. A holder at its own limit recycles its oldest idle connection or
// is refused; a full socket closes the oldest idle connection of the biggest holder to make room
// for a newcomer with a VM, and refuses a newcomer with none: no holder, however many
// connections it opens, can keep a VM from getting one.

/** How a connection is counted; decided once, when it is accepted. */
export interface ConnectionClass {
  /** The holder it counts against, e.g. "vm:<uuid>" or "uid:1000". */
  holder: string;
  /** Most connections this holder may have open. */
  limit: number;
  /** A budget shared with other holders (every peer in no VM), if it counts against one. */
  pool?: { name: string; limit: number };
  /** False: the connection is closed after its first answer. */
  keepAlive: boolean;
  /** May a full socket close another holder's idle connection to admit this one? */
  mayEvict: boolean;
  /** For messages, e.g. 'VM "db-vm"' or "uid 1000 (in no VM)". */
  describe: string;
  /** Whose turn on the main thread its requests take (turn-queue.ts); default: the holder. */
  payer?: string;
}

/** What the budget needs to know of a connection. */
export interface Budgeted {
  /** No request under way: nothing is lost if it is closed now (the client reconnects). */
  readonly idle: boolean;
  /** performance.now() when it last became idle. */
  readonly idleSince: number;
  /** Closes it at once (its close event then removes it from the budget). */
  evict(): void;
}

export type Admission = { ok: true } | { ok: false; message: string; hint: string };

export class ConnectionBudget<C extends Budgeted> {
  private readonly holders = new Map<string, Set<C>>();
  private readonly pools = new Map<string, Set<C>>();
  private readonly classes = new Map<C, ConnectionClass>();
  /** Connections closed to make room, since the start. */
  evictions = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.classes.size;
  }

  /** Decides whether a connection of class `cls` may be added, closing idle ones to make room. */
  admit(cls: ConnectionClass): Admission {
    const own = this.holders.get(cls.holder);
    if (own !== undefined && own.size >= cls.limit && !this.evictOldestIdle(own)) {
      return {
        ok: false,
        message: `${cls.describe} already holds ${own.size} connections to this socket, its limit`,
        hint: 'reuse an open connection, or close one first',
      };
    }
    if (cls.pool !== undefined) {
      const pool = this.pools.get(cls.pool.name);
      if (pool !== undefined && pool.size >= cls.pool.limit && !this.evictFromBiggest(pool)) {
        return {
          ok: false,
          message: `peers in no registered VM hold ${pool.size} connections to this socket, all they may share`,
          hint: 'retry shortly; a process inside a VM has connections of its own',
        };
      }
    }
    if (this.classes.size >= this.max && !(cls.mayEvict && this.evictFromBiggest(this.classes.keys()))) {
      return {
        ok: false,
        message: `the socket holds ${this.classes.size} connections, its limit, and none is idle`,
        hint: 'retry shortly',
      };
    }
    return { ok: true };
  }

  add(connection: C, cls: ConnectionClass): void {
    this.classes.set(connection, cls);
    setOf(this.holders, cls.holder).add(connection);
    if (cls.pool !== undefined) setOf(this.pools, cls.pool.name).add(connection);
  }

  remove(connection: C): void {
    const cls = this.classes.get(connection);
    if (cls === undefined) return;
    this.classes.delete(connection);
    dropFrom(this.holders, cls.holder, connection);
    if (cls.pool !== undefined) dropFrom(this.pools, cls.pool.name, connection);
  }

  /** Among `connections`, the holder with the most connections that has an idle one loses its oldest idle one. */
  private evictFromBiggest(connections: Iterable<C>): boolean {
    const counts = new Map<string, number>();
    for (const c of connections) {
      const holder = this.classes.get(c)!.holder;
      counts.set(holder, (counts.get(holder) ?? 0) + 1);
    }
    for (const [holder] of [...counts].sort((a, b) => b[1] - a[1])) {
      if (this.evictOldestIdle(this.holders.get(holder)!)) return true;
    }
    return false;
  }

  private evictOldestIdle(connections: Set<C>): boolean {
    let oldest: C | undefined;
    for (const c of connections) if (c.idle && (oldest === undefined || c.idleSince < oldest.idleSince)) oldest = c;
    if (oldest === undefined) return false;
    // Out of the budget now: its close event comes later, and the newcomer needs the slot now.
    this.remove(oldest);
    oldest.evict();
    this.evictions++;
    return true;
  }
}

function setOf<C>(map: Map<string, Set<C>>, key: string): Set<C> {
  let s = map.get(key);
  if (s === undefined) map.set(key, (s = new Set()));
  return s;
}

function dropFrom<C>(map: Map<string, Set<C>>, key: string, c: C): void {
  const s = map.get(key);
  if (s === undefined) return;
  s.delete(c);
  if (s.size === 0) map.delete(key);
}
