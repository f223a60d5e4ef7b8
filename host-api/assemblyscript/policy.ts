// Where the author's decision function is registered, so the ABI's `evaluate` can call it.
// AssemblyScript has no way for a library to call a function the entry file merely exports,
// so the entry file hands it over once at module scope: `policy(decide)`.
import { Decision } from "./decision";
import { Request } from "./types";

export type DecideFn = (req: Request) => Decision;

let registered: DecideFn | null = null;

/** Registers the policy's decision function. Call once, at module scope of the entry file. */
export function policy(decide: DecideFn): void {
  registered = decide;
}

/** The registered function, or null when the entry file forgot `policy(decide)`. */
export function registeredPolicy(): DecideFn | null {
  return registered;
}
