// Policies as the daemon manages them: check the signature, validate + compile before storing,
// keep the engine's loaded set in step with what is bound, switch bindings atomically, and never
// unload a revision while a request still evaluates it. A bound revision that may not run under
// today's trust roots (unsigned while signatures are required, its key removed, its bytes or
// signature changed in the database) is never compiled: its binding is published suspended, and
// the request path denies it with the signature problem as its reason. At start-up the bound
// revisions are recompiled (in the engine's compile process) while the daemon already serves: a
// request for one not ready yet waits for it within its deadline (whenLoaded).
import type { Logger } from 'pino';
import type { Operation } from '../../contract/types.ts';
import type { PolicyEngine } from '../../engine/api.ts';
import { createHash } from 'node:crypto';
import type { TrustRoots } from '../../signing/trust-roots.ts';
import { warmUp } from '../../engine/warm-up.ts';
import type { Store } from '../../store/store.ts';
import {
  MAX_DESCRIPTION_CHARS,
  POLICY_NAME_PATTERN,
  POLICY_NAME_RULE,
  type Binding,
  type BindingResponse,
  type BindingSource,
  type PushPolicyResponse,
  type RevisionInfo,
  type SignatureProblem,
} from '../../wire/index.ts';
import { BindingTable } from '../state/binding-table.ts';

/** Start-up recompiles of one bound revision, while the compile launcher or process is down. */
const START_COMPILE_ATTEMPTS = 5;

export type ServiceResult<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      code: 'bad-request' | 'invalid-policy' | 'not-found' | 'conflict' | 'compiler-unavailable';
      message: string;
      hint?: string;
      kind?: string;
      /** compiler-unavailable: nothing changed; ask again after this many seconds. */
      retryAfterS?: number;
    };

/** A compile that failed for a cause that passes (the compile launcher or process died): nothing changed, ask again. */
function compilerUnavailable(
  message: string,
  retryAfterS: number,
  what: string,
): Extract<ServiceResult<never>, { ok: false }> {
  return {
    ok: false,
    code: 'compiler-unavailable',
    message,
    retryAfterS,
    hint: `nothing was changed; ${what} again in ${retryAfterS} s`,
  };
}

/** Whether a stored revision may run under the daemon's trust roots. */
type Verdict = { ok: true } | { ok: false; reason: SignatureProblem; message: string };

/** A binding whose revision may not run, as health reports it. */
export interface SuspendedBinding {
  operation: Operation;
  policy: string;
  revision: number;
  reason: SignatureProblem;
  message: string;
}

/** How the policy directory tells the service which operations it owns (null: directory off). */
export interface DirectoryOwnership {
  readonly directory: string;
  owns(operation: Operation): boolean;
}

export class PolicyService {
  readonly bindings = new BindingTable();
  private readonly loaded = new Set<string>();
  private readonly inUse = new Map<string, number>();
  private readonly unloadWhenIdle = new Set<string>();
  /** Bound revisions being recompiled at start-up: resolves true once loaded, false if it failed. */
  private readonly loading = new Map<string, Promise<boolean>>();
  /** Admin mutations run one at a time: compile awaits must not interleave with a bind. */
  private mutex: Promise<unknown> = Promise.resolve();
  /** Verdicts of stored revisions: the trust roots and the stored bytes do not change while it runs. */
  private readonly verdicts = new Map<string, Verdict>();
  private ownership: DirectoryOwnership | null = null;

  constructor(
    private readonly engine: PolicyEngine,
    private readonly store: Store,
    private readonly logger: Logger,
    /** Warm-up evaluations after a compile: one per engine worker. */
    private readonly warmUpRuns = 2,
    private readonly trust?: TrustRoots,
  ) {}

  get loadedCount(): number {
    return this.loaded.size;
  }

  /** The policy directory, once configured: admin changes to what it owns are refused. */
  setDirectoryOwnership(ownership: DirectoryOwnership | null): void {
    this.ownership = ownership;
  }

  /** Bindings whose revision may not run now (health, metrics). */
  suspended(): SuspendedBinding[] {
    return this.bindings.all().flatMap((b) =>
      b.suspended
        ? [
            {
              operation: b.operation,
              policy: b.policy,
              revision: b.revision,
              reason: b.suspended.reason,
              message: b.suspended.message,
            },
          ]
        : [],
    );
  }

  /** A revision as `inspect` shows it, with whether its key is trusted today. */
  revisionInfo(policy: string, revision: number): RevisionInfo | null {
    const info = this.store.policies.get(policy, revision);
    if (!info) return null;
    return {
      ...info,
      trustedNow:
        info.signature !== null &&
        this.trust?.signerOf(info.signature.keyId) != null &&
        this.verdictOf(policy, revision).ok,
    };
  }

  /**
   * At start: checks every bound revision against today's trust roots and publishes the
   * bindings at once (those that may not run, suspended); then recompiles the others from their
   * stored bytes, one after another; resolves when all are done. Until a revision is loaded,
   * whenLoaded() tells requests for it to wait.
   */
  loadBound(): Promise<void> {
    const bound = this.store.bindings.current();
    this.publish();
    const runnable = bound.filter((b) => {
      const v = this.verdictOf(b.policy, b.revision);
      if (!v.ok)
        this.logger.error(
          {
            binding: { operation: b.operation, policy: b.policy, revision: b.revision, keyId: b.keyId },
            reason: v.reason,
            problem: v.message,
          },
          `SUSPENDED: ${b.operation} is bound to ${b.policy} revision ${b.revision}, which may not run (${v.reason}); its requests are denied ${v.reason} until another revision is activated or the key is trusted again`,
        );
      return v.ok;
    });
    const all = runnable.map((b) => {
      const done = this.loadAtStart(b.policy, b.revision).then(
        (r) => {
          if (!r.ok)
            this.logger.error(
              { binding: b, error: r.message },
              'a bound policy failed to compile; its operation will deny with host-error until rebound',
            );
          return r.ok;
        },
        (err: unknown) => {
          this.logger.error(
            { binding: b, err },
            'a bound policy failed to compile; its operation will deny with host-error until rebound',
          );
          return false;
        },
      );
      this.loading.set(b.sha256, done);
      void done.then(() => this.loading.delete(b.sha256));
      return done;
    });
    return Promise.all(all).then(() => undefined);
  }

  /**
   * ensureLoaded for a start-up recompile, asked again while the compile launcher or process is
   * down (it is restarted, then after a back-off): a bound policy must not deny host-error until
   * rebound because the launcher died once.
   */
  private async loadAtStart(policy: string, revision: number): Promise<ServiceResult<true>> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.exclusive(() => this.ensureLoaded(policy, revision));
      if (r.ok || r.code !== 'compiler-unavailable' || attempt >= START_COMPILE_ATTEMPTS) return r;
      const waitS = r.retryAfterS ?? 1;
      this.logger.warn(
        { policy, revision, attempt, retryAfterS: waitS, problem: r.message },
        'a bound policy could not be compiled at start (the compile process is down); trying again',
      );
      await new Promise<void>((resolve) => setTimeout(resolve, waitS * 1000).unref());
    }
  }

  /** A promise while `sha256` is still being recompiled at start-up (true once loaded); undefined when there is nothing to wait for. */
  whenLoaded(sha256: string): Promise<boolean> | undefined {
    return this.loading.get(sha256);
  }

  /** Bound revisions still being recompiled. */
  get loadingCount(): number {
    return this.loading.size;
  }

  push(
    name: string,
    description: string,
    bytes: Uint8Array,
    signatureFile?: string,
  ): Promise<ServiceResult<PushPolicyResponse>> {
    if (!POLICY_NAME_PATTERN.test(name))
      return Promise.resolve({
        ok: false,
        code: 'bad-request',
        message: `invalid policy name "${name.slice(0, 80)}"`,
        hint: `a name is ${POLICY_NAME_RULE}`,
      });
    if (description.length > MAX_DESCRIPTION_CHARS)
      return Promise.resolve({
        ok: false,
        code: 'bad-request',
        message: `the description is longer than ${MAX_DESCRIPTION_CHARS} characters`,
      });
    // Before anything is compiled: code nobody trusted is not even parsed.
    const checked = this.checkSignature(bytes, signatureFile);
    if (!checked.ok)
      return Promise.resolve({
        ok: false,
        code: 'invalid-policy',
        message: checked.message,
        hint: checked.hint,
        kind: checked.problem,
      });
    return this.exclusive(async () => {
      const compiled = await this.engine.compile(bytes);
      if (!compiled.ok && compiled.kind === 'compiler-unavailable')
        return compilerUnavailable(compiled.message, compiled.retryAfterS, 'push it');
      if (!compiled.ok) {
        return {
          ok: false,
          code: 'invalid-policy',
          message: compiled.message,
          kind: compiled.kind,
          hint: 'build the policy against capgate:policy@1.0.0 (host-api/wit/policy.wit) and try `capgate test` locally',
        };
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
        signature:
          checked.signed === null
            ? null
            : {
                keyId: checked.signed.keyId,
                signer: checked.signed.signer,
                trustedComment: checked.signed.trustedComment,
                file: checked.signed.file,
              },
      });
      if (checked.signed)
        this.logger.info(
          {
            policy: name,
            revision: stored.revision.revision,
            keyId: checked.signed.keyId,
            signer: checked.signed.signer,
            trustedComment: checked.signed.trustedComment,
          },
          'signed revision stored',
        );
      return { ok: true, value: stored };
    });
  }

  /**
   * The signature check every revision passes before it is stored (admin push and the policy
   * directory alike). No trust roots configured: a signature cannot be checked, so one that is
   * sent is refused rather than stored unverified.
   */
  checkSignature(bytes: Uint8Array, signatureFile: string | undefined): ReturnType<TrustRoots['check']> {
    if (this.trust) return this.trust.check(bytes, signatureFile);
    if (signatureFile === undefined) return { ok: true, signed: null };
    return {
      ok: false,
      problem: 'signature-untrusted',
      message: 'the revision is signed, and this daemon has no trust roots to check the signature against',
      hint: 'add the signing key to policies.trustRoots and restart the daemon, or push without --signature',
    };
  }

  bind(
    operation: Operation,
    policy: string,
    revision: number | undefined,
    source: BindingSource = 'admin',
  ): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      const refused = this.refuseManaged(operation, source);
      if (refused) return refused;
      const rev =
        revision === undefined ? this.store.policies.latest(policy) : this.store.policies.get(policy, revision);
      if (!rev)
        return {
          ok: false,
          code: 'not-found',
          message:
            revision === undefined ? `no policy named ${policy}` : `policy ${policy} has no revision ${revision}`,
          hint: 'list policies with `capgate policy ls`',
        };
      const v = this.verdictOf(rev.policy, rev.revision);
      if (!v.ok)
        return {
          ok: false,
          code: 'invalid-policy',
          message: `${rev.policy} revision ${rev.revision} may not run: ${v.message}`,
          hint: 'push a revision signed by a trusted key and activate that',
          kind: v.reason,
        };
      const loaded = await this.ensureLoaded(rev.policy, rev.revision);
      if (!loaded.ok) return loaded;
      const r = this.store.bindings.bind(operation, rev.policy, rev.revision, Date.now(), source);
      if (!r.ok) return { ok: false, code: 'not-found', message: r.message };
      this.publish();
      return { ok: true, value: { operation, binding: r.binding, previous: r.previous } };
    });
  }

  unbind(operation: Operation, source: BindingSource = 'admin'): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      const refused = this.refuseManaged(operation, source);
      if (refused) return refused;
      const r = this.store.bindings.unbind(operation);
      if (!r.ok) return { ok: false, code: 'conflict', message: r.message };
      this.publish();
      return { ok: true, value: { operation, binding: null, previous: r.previous } };
    });
  }

  rollback(operation: Operation): Promise<ServiceResult<BindingResponse>> {
    return this.exclusive(async () => {
      const refused = this.refuseManaged(operation, 'admin');
      if (refused) return refused;
      // Compile the target before the switch, so the restored binding is ready when it goes live.
      const target = this.store.bindings.history(operation, 1000).filter((h) => h.rolledBackAt === undefined)[1];
      if (target?.binding) {
        const v = this.verdictOf(target.binding.policy, target.binding.revision);
        if (!v.ok)
          return {
            ok: false,
            code: 'invalid-policy',
            message: `the earlier binding, ${target.binding.policy} revision ${target.binding.revision}, may not run: ${v.message}`,
            kind: v.reason,
            hint: 'activate a revision signed by a trusted key instead: `capgate policy activate <name> --revision <n>`',
          };
        const loaded = await this.ensureLoaded(target.binding.policy, target.binding.revision);
        if (!loaded.ok) return loaded;
      }
      const r = this.store.bindings.rollback(operation);
      if (!r.ok)
        return {
          ok: false,
          code: 'conflict',
          message: r.message,
          hint:
            r.reason === 'nothing-to-roll-back'
              ? 'activate a revision instead: `capgate policy activate <name>`'
              : 'push the policy again and activate it: `capgate policy push <file.wasm> --name <name> --activate set-memlock`',
        };
      this.publish();
      return { ok: true, value: { operation, binding: r.binding, previous: r.previous } };
    });
  }

  deleteRevision(policy: string, revision: number): Promise<ServiceResult<{ policy: string; revision: number }>> {
    return this.exclusive(async () => {
      const rev = this.store.policies.get(policy, revision);
      const r = this.store.policies.delete(policy, revision);
      if (r === 'not-found')
        return { ok: false, code: 'not-found', message: `policy ${policy} has no revision ${revision}` };
      if (r === 'bound')
        return {
          ok: false,
          code: 'conflict',
          message: `${policy} revision ${revision} is bound`,
          hint: `activate another revision first (\`capgate policy activate ${policy} --revision <n>\`), or unbind it (\`capgate policy unbind\`)`,
        };
      this.verdicts.delete(`${policy}\u0000${revision}`);
      if (rev && ![...this.store.policies.list().values()].flat().some((x) => x.sha256 === rev.sha256))
        this.unload(rev.sha256);
      return { ok: true, value: { policy, revision } };
    });
  }

  /**
   * Marks a revision as in use by one request, until release(binding). A count back at 0 stays
   * in the map until the revision is unloaded: every decision takes and releases one, and a key
   * deleted and set again made the map shrink and grow (~150 B of garbage a decision).
   */
  acquire(binding: Binding): void {
    this.inUse.set(binding.sha256, (this.inUse.get(binding.sha256) ?? 0) + 1);
  }

  release(binding: Binding): void {
    const n = Math.max(0, (this.inUse.get(binding.sha256) ?? 0) - 1);
    this.inUse.set(binding.sha256, n);
    if (n === 0 && this.unloadWhenIdle.delete(binding.sha256)) this.unload(binding.sha256);
  }

  private publish(): void {
    this.bindings.replace(
      this.store.bindings.current().map((b) => {
        const v = this.verdictOf(b.policy, b.revision);
        return v.ok ? b : { ...b, suspended: { reason: v.reason, message: v.message } };
      }),
    );
  }

  /** While a policy directory is configured, the operations it binds are its alone. */
  private refuseManaged(operation: Operation, source: BindingSource): ServiceResult<never> | null {
    const o = this.ownership;
    if (source === 'directory' || o === null) return null;
    if (this.store.bindings.currentFor(operation)?.source !== 'directory' && !o.owns(operation)) return null;
    return {
      ok: false,
      code: 'conflict',
      kind: 'directory-managed',
      message: `${operation} is managed by the policy directory ${o.directory} (policies.directory): the admin socket may not change its binding`,
      hint: `change ${o.directory}/bindings.yaml (or the ConfigMap it comes from) instead, or remove policies.directory from the config and restart to manage ${operation} by hand`,
    };
  }

  /** Checks a stored revision's signature again, against the trust roots of this run. */
  private verdictOf(policy: string, revision: number): Verdict {
    const key = `${policy}\u0000${revision}`;
    const known = this.verdicts.get(key);
    if (known) return known;
    const bytes = this.store.policies.bytes(policy, revision);
    if (bytes === null) return { ok: true };
    const rev = this.store.policies.get(policy, revision);
    const file = this.store.policies.signatureFile(policy, revision) ?? undefined;
    const c = this.checkSignature(bytes, file);
    let v: Verdict;
    if (!c.ok) v = { ok: false, reason: c.problem, message: c.message };
    else if (rev && createHash('sha256').update(bytes).digest('hex') !== rev.sha256)
      v = {
        ok: false,
        reason: 'signature-invalid',
        message: `the stored bytes of ${policy} revision ${revision} no longer match their sha256`,
      };
    else v = { ok: true };
    this.verdicts.set(key, v);
    return v;
  }

  private unload(sha256: string): void {
    if ((this.inUse.get(sha256) ?? 0) > 0) return void this.unloadWhenIdle.add(sha256);
    this.inUse.delete(sha256);
    if (this.loaded.delete(sha256)) this.engine.unload(sha256);
  }

  private async ensureLoaded(policy: string, revision: number): Promise<ServiceResult<true>> {
    const rev = this.store.policies.get(policy, revision);
    if (!rev) return { ok: false, code: 'not-found', message: `policy ${policy} has no revision ${revision}` };
    this.unloadWhenIdle.delete(rev.sha256);
    if (this.loaded.has(rev.sha256)) return { ok: true, value: true };
    const bytes = this.store.policies.bytes(policy, revision)!;
    const compiled = await this.engine.compile(bytes);
    if (!compiled.ok && compiled.kind === 'compiler-unavailable')
      return compilerUnavailable(
        `${policy} revision ${revision} could not be compiled now: ${compiled.message}`,
        compiled.retryAfterS,
        'ask',
      );
    if (!compiled.ok)
      return {
        ok: false,
        code: 'invalid-policy',
        message: `${policy} revision ${revision} no longer compiles: ${compiled.message}`,
        kind: compiled.kind,
      };
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
    if (failed)
      this.logger.warn(
        { sha256, errorKind: failed.errorKind, detail: failed.errorDetail },
        'warm-up evaluation failed',
      );
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }
}
