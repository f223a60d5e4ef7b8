// Resource limits of one policy evaluation. Configuration with safe defaults.

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
  /** Log lines kept per evaluation; the rest are counted, not stored. */
  maxLogLines: number;
}

export const DEFAULT_LIMITS: Readonly<EngineLimits> = Object.freeze({
  fuel: 10_000_000,
  memoryPages: 160, // 10 MiB
  deadlineMs: 100,
  maxModuleBytes: 4 * 1024 * 1024,
  maxCapabilityCalls: 16,
  maxGuestStringBytes: 4096,
  maxLogLines: 64,
});
