// The Engine a config's `engine` section describes. The daemon makes its Engine from its
// resolved config; the simulator from the section `capgate serve` runs with when no config sets
// one. Both then run a policy with the same limits, speculative fuel slice and time budget, and
// no number is copied between them.
import type { EngineOptions } from '../engine/engine.ts';
import { withDefaults } from './defaults.ts';
import { ConfigSchema, type DaemonConfig } from './schema.ts';

/** The section without `workers`: how many threads run policies changes no decision. */
export type EngineSection = Omit<DaemonConfig['engine'], 'workers'>;

/** What a config decides of the Engine. */
export function engineOptions(
  section: EngineSection,
): Required<Pick<EngineOptions, 'limits' | 'inlineFuel' | 'inlineBudgetMs' | 'compileProcess'>> {
  return {
    limits: { ...section.limits },
    inlineFuel: section.inlineFuel,
    inlineBudgetMs: section.inlineBudgetMs,
    compileProcess: { allowUnsandboxed: section.allowUnsandboxedCompile },
  };
}

/** The engine section of `capgate serve` with no config (resolveConfig fills it the same way). */
export function defaultEngineSection(): EngineSection {
  const { workers: _host, ...section } = withDefaults(ConfigSchema.properties.engine, {}) as DaemonConfig['engine'];
  return section;
}
