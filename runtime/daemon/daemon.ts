// startDaemon: state, engine, both sockets, and an orderly stop.
import type net from 'node:net';
import { pino, type Logger } from 'pino';
import { assertLinuxSupport } from '../os/support.ts';
import { landlockSupport } from '../os/landlock.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { DEFAULT_LIMITS } from '../engine/limits.ts';
import { engineOptions } from '../config/engine-options.ts';
import {
  checkAnchor,
  resolveRequesterVm,
  SearchBudget,
  TranslationCache,
  translateTargetPid,
  validateVmRegistration,
} from '../identity/index.ts';
import { peerStillConnected, readPeerCredentials, releasePeerCredentials } from '../os/peer-credentials.ts';
import { Store } from '../store/store.ts';
import type { JournalIo } from '../store/audit-journal.ts';
import { WalCheckpointer } from '../store/checkpoint/wal-checkpointer.ts';
import { lookAtWal } from '../store/checkpoint/wal-index.ts';
import { adminRouter, type AdminPeer } from '../server/admin/admin-api.ts';
import { AuditWriter } from '../server/audit/audit-writer.ts';
import type { IdentityDeps, PeerCredentials } from '../server/deps.ts';
import { fail } from '../server/http/reply.ts';
import { ByteRateBudget } from '../server/http/byte-rate-budget.ts';
import { LeanHttpServer } from '../server/http/lean/lean-server.ts';
import { UnixHttpServer } from '../server/http/unix-server.ts';
import { DaemonMetrics } from '../server/metrics/daemon-metrics.ts';
import { PolicyService } from '../server/policies/policy-service.ts';
import { DecisionPipeline } from '../server/request/decision-pipeline.ts';
import { requestHandler } from '../server/request/request-api.ts';
import { TurnQueue, type TurnRefusal } from '../server/scheduler/turn-queue.ts';
import { FairScheduler } from '../server/scheduler/fair-scheduler.ts';
import { VmRegistry } from '../server/state/vm-registry.ts';
import { describeHealthProblem, type HealthProblem, type HealthResponse } from '../wire/index.ts';
import { resolveConfig, uploadBudgetShortfall, type DaemonConfig, type DaemonConfigInput } from './config.ts';
import { connectionClassifier } from './connection-classes.ts';
import { prepareDirectories } from './directories.ts';
import { PolicyDirectory } from './policy-directory/policy-directory.ts';
import { TrustRoots } from '../signing/trust-roots.ts';
import { openEffectsJournal } from './effects-journal.ts';
import { OverrunWarnings } from './overrun-warnings.ts';
import { tellServiceManager } from './sd-notify.ts';
import { CAPGATE_VERSION } from '../bootstrap/version.ts';

export { CAPGATE_VERSION } from '../bootstrap/version.ts';

export interface StartOptions {
  /** Default: pino to stdout at config.log.level. */
  logger?: Logger;
  /** Test seams of the engine (faults at moments hard to reach otherwise, and the main thread's
   * time budget for speculative runs); never from configuration. */
  engineSeams?: Pick<EngineOptions, 'seams' | 'inlineBudgetMs'>;
  /** Test seam of the audit journal's system calls (a failed or held fdatasync); never from configuration. */
  journalIo?: Partial<JournalIo>;
}

export interface RunningDaemon {
  readonly config: DaemonConfig;
  readonly adminSocket: string;
  readonly requestSocket: string;
  readonly logger: Logger;
  /** Milliseconds from startDaemon() to both sockets listening. */
  readonly startupMs: number;
  /** Stop accepting, finish in-flight requests, commit the audit, close the engine and database. Idempotent. */
  close(): Promise<void>;
}

export async function startDaemon(input: DaemonConfigInput = {}, options: StartOptions = {}): Promise<RunningDaemon> {
  const t0 = performance.now();
  const config = resolveConfig(input);
  const logger = options.logger ?? pino({ level: config.log.level, base: { service: 'capgate' } });
  const support = assertLinuxSupport();
  // What cannot work here, said at start, in every health answer and when a registration needs it.
  const problems =
    support.cgroupView.kind === 'unresolved' ? [`cgroup anchors cannot match: ${support.cgroupView.problem}`] : [];
  for (const problem of problems) logger.error(problem);
  if (!support.canRaiseHardLimit)
    logger.warn(
      'no CAP_SYS_RESOURCE: policies can lower memlock limits and raise soft limits up to the hard one, raising a hard limit fails with not-permitted',
    );

  const slowUploads = uploadBudgetShortfall(config);
  if (slowUploads !== undefined) logger.warn(slowUploads);

  // Without Landlock the compile process still runs without capabilities, under its seccomp
  // filter (no socket, no file written), but reads what root owns; refusing every upload on
  // every kernel before 5.13, or booted without landlock in lsm=, would cost more than that
  // (engine/compile/compile-sandbox.ts).
  const landlock = landlockSupport();
  if (!landlock.ok)
    logger.warn(
      `no Landlock: ${landlock.why}. The compile process and its launcher still run without capabilities under their seccomp filters, but can read root's files (the state database among them)`,
    );

  // Before anything in them is opened: directories another user prepared are refused.
  prepareDirectories(config);

  const cleanup: Array<() => Promise<void> | void> = [];
  const undo = async (): Promise<void> => {
    for (const f of cleanup.reverse()) await f();
  };
  try {
    const store = Store.open(config.database, config.audit.durability, {
      ...(options.journalIo !== undefined ? { journalIo: options.journalIo } : {}),
      onJournalRetireError: (err) =>
        logger.error(
          { err },
          'audit journal: the database could not be synced, so a journal segment is kept (retried in a second; nothing is lost, the journal grows meanwhile)',
        ),
    });
    cleanup.push(() => store.close());
    if (store.audit.recovery.droppedBytes > 0)
      logger.warn(
        { ...store.audit.recovery },
        'audit journal: cut off a torn tail (a write that never completed, so never acknowledged)',
      );
    const effects = await openEffectsJournal(config.database, store, logger);
    cleanup.push(() => effects.close());
    const overruns = new OverrunWarnings(logger);
    let effectsCheckedAt = 0;
    let onBudgetRenewed = (): void => {};
    const engine = new Engine({
      ...engineOptions(config.engine),
      workers: config.engine.workers,
      linuxCapabilities: true,
      // Forked here, before the workers and the sockets, while the process is small: no upload
      // forks the main thread (engine/compile/compile-process.ts).
      startCompileLauncher: true,
      effectsJournal: effects,
      ...options.engineSeams,
      onInlineOverrun: (sha256, ms) => overruns.report(sha256, ms),
      // A decision turned away from the main thread for its spent budget waits for a worker's slot
      // unless the scheduler looks again once the budget is renewed.
      onInlineBudgetRenewed: () => onBudgetRenewed(),
    });
    cleanup.push(() => engine.close());
    const started = Date.now();

    // Membership verdicts of translated targets are reused for as long as the requester's own VM is.
    const translations = new TranslationCache(undefined, config.request.identityCacheMs);
    cleanup.push(() => translations.close());
    const searches = new SearchBudget();
    const identity: IdentityDeps = {
      readPeerCredentials,
      resolveRequesterVm,
      validateVmRegistration,
      checkAnchor: (vm, registered) => checkAnchor(vm, registered),
      peerStillConnected,
      translateTargetPid: (requester, vm, targetPid) =>
        translateTargetPid(requester, vm, targetPid, { cache: translations, budget: searches }),
    };
    const trust = new TrustRoots(config.policies.trustRoots, config.policies.requireSignatures);
    if (trust.required && trust.size === 0)
      logger.warn(
        'policies.requireSignatures is on and policies.trustRoots is empty: every revision is refused until a trust root is configured',
      );
    const policies = new PolicyService(engine, store, logger, config.engine.workers, trust);
    const vms = new VmRegistry();
    vms.replace(store.vms.list());
    // Registrations made before anchors were checked (or whose processes moved since): say so.
    for (const vm of vms.vms) {
      const refusal = checkAnchor(vm, vms.vms);
      if (refusal !== null)
        logger.warn(
          { vm: vm.identity.uuid, name: vm.identity.name, problem: refusal.message },
          'a registered VM has an anchor that registration would refuse today: fix it with PUT /v1/vms/<uuid> or unregister it',
        );
    }
    let onPaced = (): void => {};
    let onSettlingOffThread = (_vm: string): void => {};
    const scheduler = new FairScheduler(config.scheduler, {
      onPaced: () => onPaced(),
      onSettlingOffThread: (vm) => onSettlingOffThread(vm),
    });
    onBudgetRenewed = () => scheduler.retry();
    let onTurnRefused = (_reason: TurnRefusal): void => {};
    // The main thread's per-request work, in fair order between VMs (turn-queue.ts): the same
    // bounds and the same "another VM is asking" as the evaluation scheduler, each VM held to
    // mainThreadShare (vmShare unless set) in a bucket of its own (mainThreadBurstMs), and a
    // request waits at most its deadline.
    let onTurnPaced = (): void => {};
    const turns = new TurnQueue(
      {
        maxQueued: config.scheduler.maxQueued,
        maxQueuedPerKey: config.scheduler.maxQueuedPerKey,
        contentionWindowMs: config.scheduler.contentionWindowMs,
        maxWaitMs: config.request.deadlineMs,
        share: config.scheduler.mainThreadShare,
        burstMs: config.scheduler.mainThreadBurstMs,
      },
      { onRefused: (reason) => onTurnRefused(reason), onPaced: () => onTurnPaced() },
    );
    // The main thread's work on a worker's answer is the VM's own (the scheduler's key is its
    // uuid; the turn queue's, its connections' payer: connection-classes.ts).
    onSettlingOffThread = (vm) => turns.completing(`vm:${vm}`);
    let directory: PolicyDirectory | null = null;
    const metrics = new DaemonMetrics(
      {
        longestGuestTurn: () => engine.takeLongestInlineTurn(),
        policiesLoaded: () => policies.loadedCount,
        vmsRegistered: () => vms.vms.length,
        queued: () => scheduler.queued,
        inFlight: () => scheduler.inFlight,
        pacedVms: () => scheduler.pacedKeys,
        turnsQueued: () => turns.queued,
        turnsPacedVms: () => turns.pacedKeys,
        turnOutsideMs: () => turns.outsideMsPerRequest,
        longestTurnWait: () => turns.takeLongestWait(),
        bindingsSuspended: () => policies.suspended().length,
        ...(config.policies.directory !== undefined
          ? { policyDirectoryError: () => (directory?.failing ? 1 : 0) }
          : {}),
        auditBacklog: () => store.audit.uningested,
        walFramesWaiting: () => {
          const wal = lookAtWal(config.database);
          return wal.ok ? wal.framesWaiting : null;
        },
        walCheckpointerUp: () => (checkpointer.up ? 1 : 0),
      },
      config.metrics.eventLoopResolutionMs,
    );
    cleanup.push(() => metrics.close());
    onPaced = () => metrics.vmPaced.inc();
    onTurnRefused = (reason) => metrics.rejected.inc({ reason: reason === 'deadline' ? 'turn-deadline' : reason });
    onTurnPaced = () => metrics.mainThreadPaced.inc();
    for (const result of ['done', 'busy', 'failed'] as const) metrics.walCheckpoints.inc({ result }, 0);
    const checkpointer = new WalCheckpointer({
      database: config.database,
      durability: config.audit.durability,
      onCheckpoint: (r) => {
        metrics.walCheckpoints.inc({ result: r.busy ? 'busy' : 'done' });
        logger.debug({ ...r }, 'WAL checkpointed');
      },
      onProblem: (kind, message) => {
        if (kind === 'failed') metrics.walCheckpoints.inc({ result: 'failed' });
        logger.error(
          { problem: message },
          "WAL checkpoint worker: the database's write-ahead log grows until this is fixed (decisions go on)",
        );
      },
      onWarning: (message) => logger.warn(message),
    });
    // Stopped before the store closes (cleanup runs in reverse): the store's close checkpoints the rest.
    cleanup.push(() => checkpointer.close());
    overruns.bind(policies, metrics);
    const audit = new AuditWriter(store.audit, {
      onCommit: (n, s) => (metrics.auditBatchSize.observe(n), metrics.auditCommitSeconds.observe(s)),
      moreComing: () => scheduler.inFlight > 0,
      // A commit is one write() with either durability ('full' syncs on the thread pool, and the
      // commits made while one sync runs wait together for the next): holding would only add latency.
      holdMs: 0,
      onIndexError: (err) => logger.error({ err }, 'audit indexing failed (the records are committed; reads retry)'),
      // Held while the checkpoint worker's last pass runs, so that the WAL can start again.
      writeGate: checkpointer.writeGate,
    });
    await engine.ready();
    // The bound policies recompile in the engine's compile process while the sockets listen: a
    // request for one not ready yet waits for it within its deadline (DecisionPipeline).
    const loaded = policies.loadBound();
    void loaded.then(() => logger.info({ policiesLoaded: policies.loadedCount }, 'bound policies loaded'));
    if (config.policies.directory !== undefined) {
      directory = new PolicyDirectory({
        directory: config.policies.directory,
        policies,
        store,
        logger,
        metrics,
        maxPolicyBytes: config.http.maxPolicyBytes,
        pollIntervalMs: config.policies.directoryPollS * 1000,
      });
      const d = directory;
      cleanup.push(() => d.close());
      // Before the sockets: the first request already sees what the directory says. A restart
      // with the directory unchanged compiles nothing here (its revisions are stored and bound);
      // a changed one waits for its compiles, which queue behind the bound revisions' above.
      await directory.start();
    }

    const retention = {
      ...(config.audit.retentionDays !== undefined ? { maxAgeMs: config.audit.retentionDays * 86_400_000 } : {}),
      ...(config.audit.retentionRecords !== undefined ? { maxRecords: config.audit.retentionRecords } : {}),
    };
    const prune = (): void => {
      try {
        const n = store.audit.prune(retention);
        if (n > 0) logger.info({ deleted: n }, 'audit retention applied');
      } catch (err) {
        logger.error({ err }, 'audit retention failed');
      }
    };
    if (retention.maxAgeMs !== undefined || retention.maxRecords !== undefined) {
      prune();
      const timer = setInterval(prune, config.audit.pruneIntervalS * 1000);
      timer.unref();
      cleanup.push(() => clearInterval(timer));
    }

    let stopping = false;
    // Policy problems in full on the admin socket; the request socket says only that there are some.
    const policyProblems = (): HealthProblem[] => {
      const out: HealthProblem[] = policies.suspended().map((b) => ({ kind: 'binding-suspended', ...b }));
      const d = directory?.problem();
      if (d) out.push(d);
      return out;
    };
    const health = (detail: boolean): HealthResponse => {
      const p = policyProblems();
      const checkpoints = checkpointer.problem;
      const all = [
        ...problems,
        ...(checkpoints !== null ? [`the database's write-ahead log is not being checkpointed: ${checkpoints}`] : []),
        ...(detail
          ? p.map(describeHealthProblem)
          : p.length > 0
            ? [`${p.length} policy problem(s): ask the admin socket (capgate health --admin)`]
            : []),
      ];
      return {
        status: stopping ? 'shutting-down' : all.length > 0 ? 'degraded' : 'ok',
        ...(all.length > 0 ? { problems: all } : {}),
        version: CAPGATE_VERSION,
        uptimeS: Math.round((Date.now() - started) / 1000),
        ...(detail
          ? {
              detail: {
                policiesLoaded: policies.loadedCount,
                vmsRegistered: vms.vms.length,
                bindings: policies.bindings.all(),
                queueDepth: scheduler.queued,
                inFlight: scheduler.inFlight,
                problems: p,
                ...(directory ? { policyDirectory: directory.status() } : {}),
              },
            }
          : {}),
      };
    };

    const pipeline = new DecisionPipeline({
      engine,
      policies,
      vms,
      identity,
      scheduler,
      audit,
      metrics,
      requestDeadlineMs: config.request.deadlineMs,
      evaluationDeadlineMs: config.engine.limits.deadlineMs ?? DEFAULT_LIMITS.deadlineMs,
      identityTtlMs: config.request.identityCacheMs,
      droppedMemoryMsPerMiB: config.scheduler.droppedMemoryMsPerMiB,
      onUnaudited: (record, err) =>
        logger.error(
          { err, record },
          'a decision could not be audited: it was not answered, and the effects of its calls were undone (see capabilityCalls)',
        ),
      // With no decision open, no intent is pending: a slot still claimed is one a stopped worker
      // never reported (looked for at most once a second).
      onIdle: () => {
        const now = performance.now();
        if (now - effectsCheckedAt < 1000) return;
        effectsCheckedAt = now;
        effects.clearAll();
      },
    });
    const httpLimits = config.http;

    const peerOf = (socket: net.Socket): PeerCredentials => {
      const creds = readPeerCredentials(socket);
      // The pidfd is ours to close; the connection's lifetime is the peer's.
      socket.once('close', () => releasePeerCredentials(creds));
      return creds;
    };

    // One budget for every body the admin socket reads or drops (byte-rate-budget.ts).
    const adminBodyBudget = new ByteRateBudget(config.admin.uploadBytesPerSecond, config.admin.uploadBurstBytes);
    const admin = new UnixHttpServer<AdminPeer>({
      bodyBudget: adminBodyBudget,
      name: 'admin',
      socketPath: config.adminSocket,
      mode: config.admin.socketMode,
      limits: httpLimits,
      logger,
      router: adminRouter({
        store,
        policies,
        vms,
        identity,
        metrics,
        maxJsonBytes: httpLimits.maxJsonBytes,
        maxPolicyBytes: httpLimits.maxPolicyBytes,
        bodyBudget: adminBodyBudget,
        health: () => health(true),
        version: CAPGATE_VERSION,
      }),
      identify(socket) {
        const creds = peerOf(socket);
        const allowed = config.admin.allowUids.includes(creds.uid) || config.admin.allowGids.includes(creds.gid);
        if (!allowed)
          logger.warn(
            { peer: { pid: creds.pid, uid: creds.uid, gid: creds.gid } },
            'admin connection from a peer not on the allow-list',
          );
        return { creds, allowed };
      },
      authorize: (peer) =>
        peer.allowed
          ? null
          : fail(
              'forbidden',
              `uid ${peer.creds.uid} (gid ${peer.creds.gid}) may not use the admin socket`,
              'add the uid or gid to admin.allowUids / admin.allowGids in the daemon configuration',
            ),
    });
    const request = new LeanHttpServer<PeerCredentials>({
      name: 'request',
      socketPath: config.requestSocket,
      mode: config.request.socketMode,
      ...(config.request.socketGroup !== undefined ? { gid: config.request.socketGroup } : {}),
      limits: httpLimits,
      maxBodyBytes: httpLimits.maxJsonBytes,
      logger,
      handler: requestHandler({
        pipeline,
        retryAfterS: config.request.retryAfterS,
        health: () => health(false),
        version: CAPGATE_VERSION,
      }),
      identify: peerOf,
      classify: connectionClassifier(config.request, (peer) => pipeline.requesterVms.resolve(peer)),
      turns: {
        queue: turns,
        refusal: (reason, retryAfterMs = 0) => {
          if (reason === 'vm-rate-limited') {
            // As the evaluation scheduler's refusal for the VM's share (decision-pipeline.ts).
            const after = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
            return fail(
              'vm-rate-limited',
              `this VM has used more than its share of the daemon's main thread (scheduler.mainThreadShare) while other VMs were asking, and this request's deadline passed while it waited`,
              `retry after ${after} s`,
              { headers: { 'retry-after': after } },
            );
          }
          return fail(
            'overloaded',
            reason === 'deadline'
              ? `the request waited ${config.request.deadlineMs} ms for its turn on the daemon's main thread`
              : 'too many requests are waiting',
            `retry after ${config.request.retryAfterS} s`,
            { headers: { 'retry-after': String(config.request.retryAfterS) } },
          );
        },
      },
    });
    await admin.listen();
    cleanup.push(() => admin.close(httpLimits.shutdownGraceMs));
    await request.listen();
    cleanup.push(() => request.close(httpLimits.shutdownGraceMs));

    const startupMs = Math.round(performance.now() - t0);
    logger.info(
      {
        adminSocket: config.adminSocket,
        requestSocket: config.requestSocket,
        database: config.database,
        startupMs,
        policiesLoaded: policies.loadedCount,
        vms: vms.vms.length,
      },
      'capgate ready',
    );

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        stopping = true;
        directory?.close();
        logger.info('capgate stopping');
        tellServiceManager(logger, 'STOPPING=1');
        // Stop accepting first; requests already admitted run to their answer.
        await Promise.all([
          admin.close(httpLimits.shutdownGraceMs),
          request.close(httpLimits.shutdownGraceMs),
          scheduler.drain(),
        ]);
        // Durability 'full': the last records' fdatasync has returned (their decisions answered).
        await audit.close();
        cleanup.length = 0;
        await Promise.all([engine.close(), checkpointer.close()]);
        effects.close();
        metrics.close();
        translations.close();
        store.close();
        logger.info('capgate stopped');
      })());
    return { config, adminSocket: config.adminSocket, requestSocket: config.requestSocket, logger, startupMs, close };
  } catch (err) {
    await undo().catch(() => undefined);
    throw err;
  }
}
