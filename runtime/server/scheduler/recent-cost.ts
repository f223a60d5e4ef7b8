// What a key (a VM) has cost recently: a sum of measured costs that halves every
// COST_HALF_LIFE_MS, so that a key that used much a while ago is not held to it for ever. Both
// queues that order VMs by cost keep one per key: the evaluation scheduler (fair-scheduler.ts,
// the time each evaluation holds its slot) and the main thread's request queue (turn-queue.ts,
// the main thread's time each request takes).

/** Half-life of the recent cost that orders dispatch (ms). */
export const COST_HALF_LIFE_MS = 1000;

export interface RecentCost {
  /** Recent cost (ms), decayed to `costAt`. */
  cost: number;
  costAt: number;
}

/** The recent cost as of `now`. */
export function decayedCost(c: RecentCost, now: number): number {
  return c.cost * 2 ** (-(now - c.costAt) / COST_HALF_LIFE_MS);
}

/** Adds `ms` at `now`. */
export function addCost(c: RecentCost, now: number, ms: number): void {
  c.cost = decayedCost(c, now) + ms;
  c.costAt = now;
}
