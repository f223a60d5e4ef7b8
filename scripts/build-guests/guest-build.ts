// What a guest builder takes and returns; its own file so the per-language builders and
// build-guests.ts, which calls them, do not import each other.
export interface BuiltGuest {
  language: string;
  name: string;
  corePath: string;
  componentPath: string;
  coreBytes: number;
  componentBytes: number;
  /** True when the outputs were newer than every input and nothing was rebuilt. */
  upToDate: boolean;
}

export interface BuildOptions {
  /** Skip examples whose outputs are newer than all their inputs (sources, SDK, WIT, this script). */
  onlyIfStale?: boolean;
}

/** Builds every example of one language; throws with the compiler's output on failure. */
export type GuestBuilder = (options?: BuildOptions) => Promise<BuiltGuest[]>;
