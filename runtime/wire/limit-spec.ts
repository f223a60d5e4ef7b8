// Each engine limit's default, accepted range and description: the one source the config schema
// (engine.limits), the wire schema (a revision's limits) and DEFAULT_LIMITS are built from. Its own
// file, importing nothing, so schemas/limits.ts can take it without a cycle through limits.ts.
export interface LimitSpec {
  readonly default: number;
  readonly minimum: number;
  readonly maximum: number;
  readonly description: string;
}

export const ENGINE_LIMIT_SPEC = {
  fuel: {
    default: 10_000_000,
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'Instruction budget per evaluation (start function included).',
  },
  memoryPages: {
    default: 160,
    minimum: 1,
    maximum: 65_536,
    description: 'Maximum linear memory, in 64 KiB pages (160: 10 MiB).',
  },
  deadlineMs: {
    default: 100,
    minimum: 1,
    maximum: 300_000,
    description:
      'Wall-clock deadline per evaluation, in milliseconds: the backstop behind fuel. 0 would deny every request, so it is refused.',
  },
  maxModuleBytes: {
    default: 4 * 1024 * 1024,
    minimum: 1024,
    maximum: 256 * 1024 * 1024,
    description: 'Largest accepted component, in bytes.',
  },
  maxCapabilityCalls: {
    default: 16,
    minimum: 0,
    maximum: 4096,
    description: 'Capability calls (set-memlock + query-vm-identity) per evaluation; beyond it: quota-exceeded.',
  },
  maxGuestStringBytes: {
    default: 4096,
    minimum: 1,
    maximum: 1024 * 1024,
    description: 'Largest string the host accepts from guest memory, in bytes.',
  },
  maxLogLines: {
    default: 64,
    minimum: 0,
    maximum: 10_000,
    description: 'Log lines kept per evaluation; the rest are counted, not decoded, not stored.',
  },
  maxLogBytes: {
    default: 16 * 1024,
    minimum: 0,
    maximum: 1024 * 1024,
    description: 'Bytes of log text kept per evaluation; a line past it is counted, not decoded, not stored.',
  },
  // Upload limits: what instantiating a policy costs (every decision makes a fresh instance) is
  // bounded by what it may declare. Checked before the module is instrumented or compiled; a
  // refusal names the limit and the value found. A policy needs code and functions, and the
  // contract's own types are 5 deep and 6 wide: lower values would refuse every policy.
  maxTableEntries: {
    default: 10_000,
    minimum: 0,
    maximum: 10_000_000,
    description:
      'Entries of a table, its initial size and its declared maximum (all tables together), checked at upload.',
  },
  maxElementEntries: {
    default: 10_000,
    minimum: 0,
    maximum: 10_000_000,
    description: 'Entries of the element segments, all together (applied at every instantiation), checked at upload.',
  },
  maxDataBytes: {
    default: 1024 * 1024,
    minimum: 0,
    maximum: 256 * 1024 * 1024,
    description: 'Bytes of the data segments, all together (copied at every instantiation), checked at upload.',
  },
  maxSegments: {
    default: 1_000,
    minimum: 0,
    maximum: 100_000,
    description: 'Data and element segments together, checked at upload.',
  },
  maxGlobals: {
    default: 1_000,
    minimum: 0,
    maximum: 1_000_000,
    description: 'Globals the module defines, checked at upload.',
  },
  maxFunctions: {
    default: 10_000,
    minimum: 1,
    maximum: 1_000_000,
    description: 'Functions the module defines, checked at upload.',
  },
  maxCodeBytes: {
    default: 1024 * 1024,
    minimum: 1,
    maximum: 256 * 1024 * 1024,
    description: 'Bytes of the code section, checked at upload.',
  },
  maxTypeDepth: {
    default: 16,
    minimum: 5,
    maximum: 1_000,
    description: "Nesting depth of a component-level value type, checked at upload (the contract's deepest is 5).",
  },
  maxTypeWidth: {
    default: 64,
    minimum: 6,
    maximum: 100_000,
    description:
      "Fields, cases, elements or names of one component-level value type, checked at upload (the contract's widest is 6).",
  },
  maxInstantiateMs: {
    default: 10,
    minimum: 1,
    maximum: 60_000,
    description: 'A timed trial instantiation at upload must take less than this, in milliseconds.',
  },
} as const satisfies Record<string, LimitSpec>;
