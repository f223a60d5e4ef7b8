// Policies as the daemon manages them: validate + compile before storing, keep the engine's
// loaded set in step with what is bound, switch bindings atomically, and never unload a
// revision while a request still evaluates it. At start-up the bound revisions are recompiled
// (in the engine's compile worker) while the daemon already serves: a request for one not ready
// yet waits for it within its deadline (whenLoaded).
import type { Logger } from 'pino';
import type { Operation } from '../../contract/types.ts';
import type { PolicyEngine } from '../../engine/api.ts';
import { warmUp } from '../../engine/warm-up.ts';
import type { Store } from '../../store/store.ts';
import {
  MAX_DESCRIPTION_CHARS,
  POLICY_NAME_PATTERN,
  POLICY_NAME_RULE,
  type Binding,
  type BindingResponse,
  type PushPolicyResponse,
} from '../../wire/index.ts';
import { BindingTable } from '../state/binding-table.ts';

export type ServiceResult<T> =
  | { ok: true; value: T }
  | { ok: false; code: 'bad-request' | 'invalid-policy' | 'not-found' | 'conflict'; message: string; hint?: string; kind?: string };

export class PolicyService {
  readonly bindings = new BindingTable();
  private readonly loaded = new Set<string>();
  private readonly inUse = new Map<string, number>();
  private readonly unloadWhenIdle = new Set<string>();
  /** Bound revisions being recompiled at start-up: resolves true once loaded, false if it failed. */
  private readonly loading = new Map<string, Promise<boolean>>();
  /** Admin mutations run one at a time: compile awaits must not interleave with a bind. */
  private mutex: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly store: Store,
    private readonly logger: Logger,
    /** Warm-up evaluations after a compile: one per engine worker. */
    private readonly warmUpRuns = 2,
  ) {}

  get loadedCount(): number {
    return this.loaded.size;
  }

  /**
   * At start: publishes the bindings at once, then recompiles every bound revision from its
   * stored bytes, one after another; resolves when all are done. Until a revision is loaded,
   * whenLoaded() tells requests for it to wait.
   */
  loadBound(): Promise<void> {
    const bound = this.store.bindings.current();
    this.bindings.replace(bound);
    const all = bound.map((b) => {
      const done = this.exclusive(() => this.ensureLoaded(b.policy, b.revision)).then(
        (r) => {
          if (!r.ok) this.logger.error({ binding: b, error: r.message }, 'a bound policy failed to compile; its operation will deny with host-error until rebound');
          return r.ok;
        },
        (err: unknown) => {
          this.logger.error({ binding: b, err }, 'a bound policy failed to compile; its operation will deny with host-error until rebound');
          return false;
        },
      );
      this.loading.set(b.sha256, done);
      void done.then(() => this.loading.delete(b.sha256));
      return done;
    });
    return Promise.all(all).then(() => undefined);
  }

  /** A promise while `sha256` is still being recompiled at start-up (true once loaded); undefined when there is nothing to wait for. */
  whenLoaded(sha256: string): Promise<boolean> | undefined {
    return this.loading.get(sha256);
  }

  /** Bound revisions still being recompiled. */
  get loadingCount(): number {
    return this.loading.size;
  }

  push(name: string, description: string, bytes: Uint8Array): Promise<ServiceResult<PushPolicyResponse>> {
    if (!POLICY_NAME_PATTERN.test(name)) return Promise.resolve({ ok: false, code: 'bad-request', message: `invalid policy name "${name.slice(0, 80)}"`, hint: `a name is ${POLICY_NAME_RULE}` });
    if (description.length > MAX_DESCRIPTION_CHARS) return Promise.resolve({ ok: false, code: 'bad-request', message: `the description is longer than ${MAX_DESCRIPTION_CHARS} characters` });
    return this.exclusive(async () => {
      const compiled = await this.engine.compile(bytes);
      if (!compiled.ok) {
        return { ok: false, code: 'invalid-policy', message: compiled.message, kind: compiled.kind, hint: 'build the policy against capgate:policy@1.0.0 (host-api/wit/policy.wit) and try `capgate test` locally' };
      }
      const p = compiled.policy;
      this.loaded.add(p.sha256);
      await this.warmUp(p.sha256);
      const stored = this.store.policies.insert({
        policy: name,
        description,
        bytes,
        sha256: p.sha256,
        info: { imports: p.imports, exports: p.exports, hostFunctions: p.hostFunctions, wit: p.wit, limits: p.limits },
      });
      return { ok: true, value: stored };
    });
  }

  bind(operation: Operation, policy: string, revision: number | undefined): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      const rev = revision === undefined ? this.store.policies.latest(policy) : this.store.policies.get(policy, revision);
      if (!rev) return { ok: false, code: 'not-found', message: revision === undefined ? `no policy named ${policy}` : `policy ${policy} has no revision ${revision}`, hint: 'list policies with `capgate policy ls`' };
      const loaded = await this.ensureLoaded(rev.policy, rev.revision);
      if (!loaded.ok) return loaded;
      const r = this.store.bindings.bind(operation, rev.policy, rev.revision);
      if (!r.ok) return { ok: false, code: 'not-found', message: r.message };
      this.publish();
      return { ok: true, value: { operation, binding: r.binding, previous: r.previous } };
    });
  }

  unbind(operation: Operation): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      const r = this.store.bindings.unbind(operation);
      if (!r.ok) return { ok: false, code: 'conflict', message: r.message };
      this.publish();
      return { ok: true, value: { operation, binding: null, previous: r.previous } };
    });
  }

  rollback(operation: Operation): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      // Compile the target before the switch, so the restored binding is ready when it goes live.
      const target = this.store.bindings.history(operation, 1000).filter((h) => h.rolledBackAt === undefined)[1];
      if (target?.binding) {
        const loaded = await this.ensureLoaded(target.binding.policy, target.binding.revision);
        if (!loaded.ok) return loaded;
      }
      const r = this.store.bindings.rollback(operation);
      if (!r.ok) return { ok: false, code: 'conflict', message: r.message, hint: r.reason === 'nothing-to-roll-back' ? 'activate a revision instead: `capgate policy activate <name>`' : 'push the policy again and activate it: `capgate policy push <file.wasm> --name <name> --activate set-memlock`' };
      this.publish();
      return { ok: true, value: { operation, binding: r.binding, previous: r.previous } };
    });
  }

  deleteRevision(policy: string, revision: number): Promise<ServiceResult<{ policy: string; revision: number }>> {
    return this.exclusive(async () => {
      const rev = this.store.policies.get(policy, revision);
      const r = this.store.policies.delete(policy, revision);
      if (r === 'not-found') return { ok: false, code: 'not-found', message: `policy ${policy} has no revision ${revision}` };
      if (r === 'bound') return { ok: false, code: 'conflict', message: `${policy} revision ${revision} is bound`, hint: `activate another revision first (\`capgate policy activate ${policy} --revision <n>\`), or unbind it (\`capgate policy unbind\`)` };
      if (rev && ![...this.store.policies.list().values()].flat().some((x) => x.sha256 === rev.sha256)) this.unload(rev.sha256);
      return { ok: true, value: { policy, revision } };
    });
  }

  /** Marks a revision as in use by one request; the returned function releases it. */
  acquire(binding: Binding): () => void {
    this.inUse.set(binding.sha256, (this.inUse.get(binding.sha256) ?? 0) + 1);
    return () => {
      const n = (this.inUse.get(binding.sha256) ?? 1) - 1;
      if (n > 0) return void this.inUse.set(binding.sha256, n);
      this.inUse.delete(binding.sha256);
      if (this.unloadWhenIdle.delete(binding.sha256)) this.unload(binding.sha256);
    };
  }

  private publish(): void {
    this.bindings.replace(this.store.bindings.current());
  }

  private unload(sha256: string): void {
    if (this.inUse.has(sha256)) return void this.unloadWhenIdle.add(sha256);
    if (this.loaded.delete(sha256)) this.engine.unload(sha256);
  }

  private async ensureLoaded(policy: string, revision: number): Promise<ServiceResult<true>> {
    const rev = this.store.policies.get(policy, revision);
    if (!rev) return { ok: false, code: 'not-found', message: `policy ${policy} has no revision ${revision}` };
    this.unloadWhenIdle.delete(rev.sha256);
    if (this.loaded.has(rev.sha256)) return { ok: true, value: true };
    const bytes = this.store.policies.bytes(policy, revision)!;
    const compiled = await this.engine.compile(bytes);
    if (!compiled.ok) return { ok: false, code: 'invalid-policy', message: `${policy} revision ${revision} no longer compiles: ${compiled.message}`, kind: compiled.kind };
    this.loaded.add(compiled.policy.sha256);
    await this.warmUp(compiled.policy.sha256);
    return { ok: true, value: true };
  }

  /**
   * One side-effect-free evaluation per worker (simulated host, no VMs), so that the first
   * real request does not pay for the workers' first instantiation against its deadline. Within
   * WARM_UP_DEADLINE_MS (engine/warm-up.ts): a policy that spins holds the workers (and its upload) no longer.
   */
  private async warmUp(sha256: string): Promise<void> {
    const outcomes = await warmUp(this.engine, sha256, this.warmUpRuns);
    const failed = outcomes.find((o) => o.errorKind !== undefined && o.errorKind !== 'quota-exceeded');
    if (failed) this.logger.warn({ sha256, errorKind: failed.errorKind, detail: failed.errorDetail }, 'warm-up evaluation failed');
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }
}
