// Resource limits of one policy: what an evaluation may use, and what an upload may declare.
// Configuration with safe defaults (daemon config `engine.limits`).

export interface EngineLimits {
  /** Instruction budget per evaluation (start function included). */
  fuel: number;
  /** Maximum linear memory, in 64 KiB pages. */
  memoryPages: number;
  /** Wall-clock deadline per evaluation, in milliseconds (backstop behind fuel). */
  deadlineMs: number;
  /** Largest accepted component, in bytes. */
  maxModuleBytes: number;
  /** Capability calls (set-memlock + query-vm-identity) per evaluation; beyond: quota-exceeded. */
  maxCapabilityCalls: number;
  /** Largest string the host accepts from guest memory, in bytes. */
  maxGuestStringBytes: number;
  /** Log lines kept per evaluation; the rest are counted, not decoded, not stored. */
  maxLogLines: number;
  /** Bytes of log text kept per evaluation; a line past it is counted, not decoded, not stored. */
  maxLogBytes: number;

  // Upload limits: what instantiating the policy costs is bounded by what it may declare, so
  // that making a fresh instance (every decision) has a known worst case. Checked before the
  // module is instrumented or compiled; a refusal names the limit and the value found.
  /** Entries of a table, its initial size and its declared maximum (all tables together). */
  maxTableEntries: number;
  /** Entries of the element segments, all together (applied at every instantiation). */
  maxElementEntries: number;
  /** Bytes of the data segments, all together (copied at every instantiation). */
  maxDataBytes: number;
  /** Data and element segments, together. */
  maxSegments: number;
  /** Globals the module defines. */
  maxGlobals: number;
  /** Functions the module defines. */
  maxFunctions: number;
  /** Bytes of the code section. */
  maxCodeBytes: number;
  /** Nesting depth of a component-level value type (the contract's deepest is 5). */
  maxTypeDepth: number;
  /** Fields, cases, elements or names of one component-level value type (the contract's widest is 6). */
  maxTypeWidth: number;
  /** A timed trial instantiation at upload must take less than this (milliseconds). */
  maxInstantiateMs: number;
}

export const DEFAULT_LIMITS: Readonly<EngineLimits> = Object.freeze({
  fuel: 10_000_000,
  memoryPages: 160, // 10 MiB
  deadlineMs: 100,
  maxModuleBytes: 4 * 1024 * 1024,
  maxCapabilityCalls: 16,
  maxGuestStringBytes: 4096,
  maxLogLines: 64,
  maxLogBytes: 16 * 1024,
  maxTableEntries: 10_000,
  maxElementEntries: 10_000,
  maxDataBytes: 1024 * 1024,
  maxSegments: 1_000,
  maxGlobals: 1_000,
  maxFunctions: 10_000,
  maxCodeBytes: 1024 * 1024,
  maxTypeDepth: 16,
  maxTypeWidth: 64,
  maxInstantiateMs: 10,
});
