// A timeout's detail names the deadline the evaluation had. Where only part of it was left for the
// run that timed out (the rest went to a first run on the main thread, or to a wait for a worker),
// the detail names the whole deadline and where the rest went.
import type { Outcome } from './outcome.ts';

/** `o` restated, if it timed out with `leftMs` of `wholeMs`: `spent` says where the rest went. */
export function wholeDeadline(o: Outcome, leftMs: number, wholeMs: number, spent: string): Outcome {
  const given = `no decision within the ${leftMs} ms deadline`;
  if (o.errorKind !== 'timeout' || o.errorDetail?.startsWith(given) !== true) return o;
  const spentMs = (wholeMs - leftMs).toFixed(3);
  return {
    ...o,
    errorDetail: `no decision within the ${wholeMs} ms deadline (${spentMs} ms of it ${spent})${o.errorDetail.slice(given.length)}`,
  };
}
