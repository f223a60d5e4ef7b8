// Resource limits of one policy evaluation: defaults and the ranges the daemon accepts. The
// config schema (engine.limits) and the wire schema (a revision's limits) are built from these.
import type { EngineLimits } from './schemas/limits.ts';

export type { EngineLimits };

interface LimitSpec {
  readonly default: number;
  readonly minimum: number;
  readonly maximum: number;
  readonly description: string;
}

export const ENGINE_LIMIT_SPEC = {
  fuel: { default: 10_000_000, minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Instruction budget per evaluation (start function included).' },
  memoryPages: { default: 160, minimum: 1, maximum: 65_536, description: 'Maximum linear memory, in 64 KiB pages (160: 10 MiB).' },
  deadlineMs: { default: 100, minimum: 1, maximum: 60_000, description: 'Wall-clock deadline per evaluation, in milliseconds: the backstop behind fuel. 0 would deny every request, so it is refused.' },
  maxModuleBytes: { default: 4 * 1024 * 1024, minimum: 1024, maximum: 256 * 1024 * 1024, description: 'Largest accepted component, in bytes.' },
  maxCapabilityCalls: { default: 16, minimum: 0, maximum: 4096, description: 'Capability calls (set-memlock + query-vm-identity) per evaluation; beyond it: quota-exceeded.' },
  maxGuestStringBytes: { default: 4096, minimum: 1, maximum: 1024 * 1024, description: 'Largest string the host accepts from guest memory, in bytes.' },
  maxLogLines: { default: 64, minimum: 0, maximum: 10_000, description: 'Log lines kept per evaluation; the rest are counted, not stored.' },
} as const satisfies Record<string, LimitSpec>;

export const DEFAULT_LIMITS: Readonly<EngineLimits> = Object.freeze({
  fuel: ENGINE_LIMIT_SPEC.fuel.default,
  memoryPages: ENGINE_LIMIT_SPEC.memoryPages.default,
  deadlineMs: ENGINE_LIMIT_SPEC.deadlineMs.default,
  maxModuleBytes: ENGINE_LIMIT_SPEC.maxModuleBytes.default,
  maxCapabilityCalls: ENGINE_LIMIT_SPEC.maxCapabilityCalls.default,
  maxGuestStringBytes: ENGINE_LIMIT_SPEC.maxGuestStringBytes.default,
  maxLogLines: ENGINE_LIMIT_SPEC.maxLogLines.default,
});
