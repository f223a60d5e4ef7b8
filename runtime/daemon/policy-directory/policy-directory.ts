// policies.directory: a folder of policies and bindings, reconciled into revisions and bindings
// at start and on every change, through the same policy service an admin push goes through
// (signature check, compile, warm-up). The kubelet updates a ConfigMap or Secret volume by
// writing a new generation `..<timestamp>` and renaming a fresh `..data` link over the old one;
// that rename is an event in the directory, which is watched, and the current generation is
// watched as well. A read is debounced, and the directory is also re-read every
// policies.directoryPollS in case an event was missed (inotify and swapped links are subtle).
//
// An update is applied whole or not at all: any refused file (untrusted path, bad signature,
// a component that does not compile, a bad bindings.yaml, a sha256 pin that does not match)
// keeps the bindings as they were, and the refusal is reported in health, metrics and the log
// until a good update replaces it. Revisions of files that did pass stay stored (unbound). A
// compile refused because the compile process was down is read again after its Retry-After.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Operation } from '../../contract/types.ts';
import type { PolicyService } from '../../server/policies/policy-service.ts';
import type { DaemonMetrics } from '../../server/metrics/daemon-metrics.ts';
import type { Store } from '../../store/store.ts';
import type { HealthProblem, PolicyDirectoryStatus } from '../../wire/index.ts';
import {
  DirectoryError,
  fingerprintDirectory,
  readDirectorySnapshot,
  type DirectorySnapshot,
} from './read-snapshot.ts';

export interface PolicyDirectoryOptions {
  directory: string;
  policies: PolicyService;
  store: Store;
  logger: Logger;
  metrics?: DaemonMetrics;
  maxPolicyBytes: number;
  pollIntervalMs: number;
  /** Quiet time after a change event before the directory is read. */
  debounceMs?: number;
}

export class PolicyDirectory {
  private readonly o: Required<Omit<PolicyDirectoryOptions, 'metrics'>> & { metrics?: DaemonMetrics };
  private applied: {
    from: string;
    at: string;
    bindingsSha256: string;
    fingerprint: string;
    operations: Set<Operation>;
  } | null = null;
  private failure: { message: string; since: string; fingerprint: string } | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private readonly watchers = new Map<string, fs.FSWatcher>();

  constructor(options: PolicyDirectoryOptions) {
    this.o = { debounceMs: 200, ...options };
    this.o.policies.setDirectoryOwnership({
      directory: this.o.directory,
      owns: (op) => this.applied?.operations.has(op) ?? false,
    });
  }

  /** Reads and applies the directory once (start-up waits for it), then follows its changes. */
  async start(): Promise<void> {
    // Operations the directory bound before a restart are still its own while it is unreadable.
    const before = new Set(
      this.o.store.bindings
        .current()
        .filter((b) => b.source === 'directory')
        .map((b) => b.operation),
    );
    this.applied =
      before.size > 0 ? { from: '', at: '', bindingsSha256: '', fingerprint: '', operations: before } : null;
    await this.reconcile();
    this.watch(this.o.directory);
    this.poll = setInterval(() => this.schedule(0), this.o.pollIntervalMs);
    this.poll.unref();
  }

  status(): PolicyDirectoryStatus {
    const a = this.applied !== null && this.applied.at !== '' ? this.applied : null;
    return {
      directory: this.o.directory,
      appliedFrom: a?.from ?? null,
      appliedAt: a?.at ?? null,
      bindingsSha256: a?.bindingsSha256 ?? null,
      error: this.failure ? { message: this.failure.message, since: this.failure.since } : null,
    };
  }

  problem(): HealthProblem | null {
    return this.failure
      ? {
          kind: 'policy-directory',
          directory: this.o.directory,
          message: this.failure.message,
          since: this.failure.since,
        }
      : null;
  }

  get failing(): boolean {
    return this.failure !== null;
  }

  /** Reads the directory now (serialised with the watcher's reads); resolves once applied or refused. */
  async reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.reconcileOnce();
      } while (this.again && !this.closed);
    })().finally(() => (this.running = null));
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    clearInterval(this.poll);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private schedule(delayMs = this.o.debounceMs): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reconcile(), delayMs);
    this.debounce.unref();
  }

  /** Watches `dir` (the directory, or the generation `..data` names); a watcher that fails is dropped, the poll stays. */
  private watch(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = fs.watch(dir, { persistent: false }, () => this.schedule());
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
        this.schedule();
      });
      this.watchers.set(dir, w);
    } catch (err) {
      this.o.logger.debug(
        { dir, err: (err as Error).message },
        'policy directory: cannot watch (the periodic re-read covers it)',
      );
    }
  }

  /** Only the directory itself and the current generation are watched. */
  private rewatch(current: string): void {
    for (const [dir, w] of this.watchers) {
      if (dir !== this.o.directory && dir !== current) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    this.watch(this.o.directory);
    this.watch(current);
  }

  private async reconcileOnce(): Promise<void> {
    const fingerprint = fingerprintDirectory(this.o.directory);
    if (fingerprint === this.applied?.fingerprint || fingerprint === this.failure?.fingerprint) return;
    try {
      const snapshot = readDirectorySnapshot(this.o.directory, this.o.maxPolicyBytes);
      if (snapshot.source.dataDir !== this.o.directory) this.rewatch(snapshot.source.dataDir);
      await this.apply(snapshot);
      const from = snapshot.source.dataDir;
      this.applied = {
        from,
        at: new Date().toISOString(),
        bindingsSha256: snapshot.bindingsSha256,
        fingerprint,
        operations: new Set(snapshot.bindings.map((b) => b.operation)),
      };
      if (this.failure)
        this.o.logger.info(
          { directory: this.o.directory, from },
          'policy directory: a good update replaced the refused one',
        );
      this.failure = null;
      this.o.metrics?.policyDirectoryReconciles.inc({ result: 'applied' });
      this.o.logger.info(
        { directory: this.o.directory, from, bindings: snapshot.bindings, policies: [...snapshot.policies.keys()] },
        'policy directory applied',
      );
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      const since = this.failure?.message === err.message ? this.failure.since : new Date().toISOString();
      // A refusal that passes (the compile process was down) is not the directory's: the same
      // generation is read again after the Retry-After, not only once it changes.
      const retryAfterS = err.retryAfterS;
      this.failure = { message: err.message, since, fingerprint: retryAfterS === undefined ? fingerprint : '' };
      if (retryAfterS !== undefined) this.schedule(retryAfterS * 1000);
      this.o.metrics?.policyDirectoryReconciles.inc({ result: 'refused' });
      this.o.logger.error(
        { directory: this.o.directory, problem: err.message },
        'policy directory: update REFUSED, the last good policies and bindings stay in force until the directory is fixed',
      );
    }
  }

  /** Stores every policy (as an admin push would), then binds what bindings.yaml says. */
  private async apply(s: DirectorySnapshot): Promise<void> {
    const { policies, store } = this.o;
    const revisions = new Map<string, number>();
    // Every signature first: nothing is compiled from an update with one bad file.
    const keyIds = new Map<string, string | null>();
    for (const p of s.policies.values()) {
      const c = policies.checkSignature(p.bytes, p.signatureFile);
      if (!c.ok) throw new DirectoryError(`${p.name}.wasm: ${c.message}`);
      keyIds.set(p.name, c.signed?.keyId ?? null);
    }
    for (const p of s.policies.values()) {
      // Already stored (a generation that changed something else, or a restart): no compile.
      const existing = store.policies.findSame(p.name, p.sha256, keyIds.get(p.name) ?? null);
      if (existing) {
        revisions.set(p.name, existing.revision);
        continue;
      }
      const r = await policies.push(
        p.name,
        `from the policy directory (${path.basename(s.source.dataDir)})`,
        p.bytes,
        p.signatureFile,
      );
      if (!r.ok) throw new DirectoryError(`${p.name}.wasm: ${r.message}`, r.retryAfterS);
      revisions.set(p.name, r.value.revision.revision);
    }
    const wanted = new Map(
      s.bindings.map((b) => [b.operation, { policy: b.policy, revision: revisions.get(b.policy)! }]),
    );
    for (const [operation, w] of wanted) {
      const now = store.bindings.currentFor(operation);
      if (now && now.source === 'directory' && now.policy === w.policy && now.revision === w.revision) continue;
      const r = await policies.bind(operation, w.policy, w.revision, 'directory');
      if (!r.ok) throw new DirectoryError(`binding ${operation} to ${w.policy}: ${r.message}`, r.retryAfterS);
    }
    for (const b of store.bindings.current()) {
      if (b.source !== 'directory' || wanted.has(b.operation)) continue;
      const r = await policies.unbind(b.operation, 'directory');
      if (!r.ok) throw new DirectoryError(`unbinding ${b.operation}: ${r.message}`);
    }
  }
}
