// When a policy's speculative run held the daemon's main thread past its budget (the engine
// then sends its runs to the workers for a while): a warning that names the policy, at most one
// per policy every WARN_EVERY_MS (a hostile policy could otherwise flood the log), and a counter.
import type { Logger } from 'pino';
import type { DaemonMetrics } from '../server/metrics/daemon-metrics.ts';
import type { PolicyService } from '../server/policies/policy-service.ts';

const WARN_EVERY_MS = 10_000;

export class OverrunWarnings {
  #policies: PolicyService | undefined;
  #metrics: DaemonMetrics | undefined;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly logger: Logger) {}

  bind(policies: PolicyService, metrics: DaemonMetrics): void {
    this.#policies = policies;
    this.#metrics = metrics;
  }

  report(sha256: string, spentMs: number): void {
    const binding = this.#policies?.bindings.all().find((b) => b.sha256 === sha256);
    const policy = binding?.policy ?? '';
    this.#metrics?.mainThreadOverruns.inc({ policy });
    const now = Date.now();
    const last = this.#last.get(sha256);
    if (last !== undefined && now - last.at < WARN_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.#last.set(sha256, { at: now, suppressed: 0 });
    this.logger.warn(
      {
        policy,
        revision: binding?.revision,
        sha256,
        spentMs: Math.round(spentMs * 1000) / 1000,
        ...(last !== undefined && last.suppressed > 0 ? { suppressedSinceLast: last.suppressed } : {}),
      },
      "a policy held the daemon's main thread past its time budget; its next runs go straight to the evaluation workers",
    );
  }
}
