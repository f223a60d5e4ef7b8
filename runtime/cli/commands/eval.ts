// `capgate eval policy.wasm --bytes 16Gi --label vfio=true`: one decision, no scenario file
// (like `opa eval` or `kwctl run`). The request comes from a process in a VM with the given
// labels; the target sits where --target says. Same engine, limits and daemon gate as `capgate test`.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { SimulatedLimit } from '../../capabilities/simulated/world.ts';
import { DEFAULT_LIMITS } from '../../engine/limits.ts';
import { formatByteSize, parseByteSize } from '../../simulator/byte-size.ts';
import { ONE_SHOT_PIDS, oneShotScenario, TARGET_PLACES, type TargetPlace } from '../../simulator/one-shot.ts';
import type { DecidedBy, SimulatedDecision } from '../../simulator/simulator.ts';
import { EXIT } from '../exit-codes.ts';
import { compileLocal, openSimulator } from '../local-simulator.ts';
import { byteSizeArg, examples, labelArg, positiveIntArg, withJson } from '../options.ts';
import { createOutput, type Output } from '../output/output.ts';

interface EvalOptions {
  json: boolean;
  bytes: bigint;
  label?: Array<[string, string]>;
  vmName: string;
  vmUuid: string;
  vmId: number;
  target: TargetPlace;
  requesterUid: number;
  memlock?: SimulatedLimit;
  capSysResource: boolean;
  bound: boolean;
  fuel?: number;
  deadlineMs?: number;
}

/** "64Ki" (soft and hard) or "64Ki:8Mi" (soft:hard). */
function memlockArg(value: string): SimulatedLimit {
  const [soft, hard = soft] = value.split(':');
  const s = parseByteSize(soft ?? '');
  const h = parseByteSize(hard ?? '');
  if (!s.ok) throw new InvalidArgumentError(s.message);
  if (!h.ok) throw new InvalidArgumentError(h.message);
  if (s.bytes > h.bytes)
    throw new InvalidArgumentError(
      `the soft limit ${soft} is above the hard limit ${hard}; the kernel never allows that`,
    );
  return { soft: s.bytes, hard: h.bytes };
}

function uidArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffff_ffff)
    throw new InvalidArgumentError(`--requester-uid must be a uid (0..4294967295), got "${value}"`);
  return Number(value);
}

function idArg(value: string): number {
  if (!/^-?\d+$/.test(value) || Number(value) < -(2 ** 31) || Number(value) > 2 ** 31 - 1)
    throw new InvalidArgumentError(`--vm-id must be a signed 32-bit integer, got "${value}"`);
  return Number(value);
}

const TARGET_HELP: Record<TargetPlace, string> = {
  vm: `pid ${ONE_SHOT_PIDS.vmMember}, in the requester's VM (its QEMU)`,
  requester: `the requester itself (pid ${ONE_SHOT_PIDS.requester})`,
  'other-vm': `pid ${ONE_SHOT_PIDS.otherVm}, in another tenant's VM`,
  host: `pid ${ONE_SHOT_PIDS.host}, a host process in no VM`,
  absent: `pid ${ONE_SHOT_PIDS.absent}, no such process`,
};

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description(
      'one decision by a policy, without a scenario file: prints decision, reason, capability calls, logs and fuel',
    )
    .argument('<policy.wasm>', 'policy component')
    .requiredOption(
      '-b, --bytes <size>',
      'requested limit: a Kubernetes quantity (16Gi binary, 16G decimal), bytes, or unlimited',
      byteSizeArg,
    )
    .option('-l, --label <key=value>', "a label of the requester's VM (repeatable)", labelArg)
    .addOption(
      new Option(
        '--target <where>',
        `where the target process is: ${TARGET_PLACES.map((t) => `${t} (${TARGET_HELP[t]})`).join('; ')}`,
      )
        .choices(TARGET_PLACES)
        .default('vm'),
    )
    .option(
      '--memlock <size[:hard]>',
      "the target's current RLIMIT_MEMLOCK, soft and hard (default 8Mi:8Mi)",
      memlockArg,
    )
    .option('--no-cap-sys-resource', 'the daemon lacks CAP_SYS_RESOURCE: raising a hard limit fails not-permitted')
    .option('--no-bound', 'nothing is bound to the operation: the daemon denies no-policy without running the policy')
    .option('--requester-uid <uid>', 'uid of the requester (from the kernel in production)', uidArg, 0)
    .option('--vm-name <name>', "name of the requester's VM", 'vm')
    .option('--vm-uuid <uuid>', "uuid of the requester's VM", '00000000-0000-4000-8000-000000000001')
    .option('--vm-id <id>', "id of the requester's VM (signed 32-bit)", idArg, 1)
    .option(
      '--fuel <n>',
      `instruction budget (default: the daemon's, ${DEFAULT_LIMITS.fuel})`,
      positiveIntArg('--fuel'),
    )
    .option(
      '--deadline-ms <ms>',
      `deadline, in ms of CPU time, capped at 10x in wall time (default: the daemon's, ${DEFAULT_LIMITS.deadlineMs} ms)`,
      positiveIntArg('--deadline-ms'),
    );
  withJson(cmd);
  examples(cmd, [
    'capgate eval build/policy.wasm --bytes 16Gi --label memlock-max=16Gi',
    'capgate eval build/policy.wasm --bytes unlimited --label vfio=true --json',
    'capgate eval build/policy.wasm --bytes 1Gi --target other-vm',
    'capgate eval build/policy.wasm --bytes 1Gi --memlock 64Ki --no-cap-sys-resource',
  ]);
  cmd.addHelpText('after', '\nExit status: 0 allowed, 1 denied, 2 bad arguments or a policy that cannot be read.\n');
  cmd.action(async (policyFile: string, o: EvalOptions) => {
    const out = createOutput(o.json);
    const scenario = oneShotScenario({
      labels: o.label ?? [],
      vmName: o.vmName,
      vmUuid: o.vmUuid,
      vmId: o.vmId,
      target: o.target,
      requesterUid: o.requesterUid,
      bytes: o.bytes,
      ...(o.memlock ? { memlock: o.memlock } : {}),
      canRaiseHardLimit: o.capSysResource,
      policyBound: o.bound,
    });
    // The simulator loads only when a decision is asked for (program.ts).
    const [{ decideCase }, { showCall }, { callToJson }] = await Promise.all([
      import('../../simulator/runner.ts'),
      import('../../simulator/check.ts'),
      import('../../simulator/report.ts'),
    ]);
    const simulator = await openSimulator(o.fuel === undefined ? {} : { fuel: o.fuel });
    try {
      const policy = await compileLocal(simulator, policyFile);
      const c = scenario.cases[0]!;
      const outcome = await decideCase(
        simulator,
        policy.sha256,
        scenario,
        c,
        o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs },
      );
      print(out, outcome, { fuel: simulator.limits.fuel, targetPid: c.request.targetPid, o }, { showCall, callToJson });
      process.exitCode = outcome.decision === 'allow' ? EXIT.ok : EXIT.failed;
    } finally {
      await simulator.close();
    }
  });
}

interface CallFormat {
  showCall: typeof import('../../simulator/check.ts').showCall;
  callToJson: typeof import('../../simulator/report.ts').callToJson;
}

/** Where the daemon would have decided, for people. */
const DECIDED_BY_TEXT: Record<DecidedBy, string> = {
  daemon: 'by the daemon, before any policy ran',
  inline: "by the first run, on the daemon's thread (within engine.inlineFuel)",
  'inline-then-worker': "by a worker, continuing the first run on the daemon's thread (its fuel slice was not enough)",
  worker: 'by a worker',
};

function print(
  out: Output,
  o: SimulatedDecision,
  ctx: { fuel: number; targetPid: number; o: EvalOptions },
  { showCall, callToJson }: CallFormat,
): void {
  const request = {
    requesterPid: ONE_SHOT_PIDS.requester,
    requesterUid: ctx.o.requesterUid,
    targetPid: ctx.targetPid,
    target: ctx.o.target,
    bytes: formatByteSize(ctx.o.bytes),
  };
  const json = {
    decision: o.decision,
    reason: o.reason,
    ...(o.errorKind ? { errorKind: o.errorKind, errorDetail: o.errorDetail } : {}),
    calls: o.capabilityCalls.map(callToJson),
    logs: o.logs,
    ...(o.droppedLogLines ? { droppedLogLines: o.droppedLogLines } : {}),
    fuelUsed: o.fuelUsed,
    fuelLimit: ctx.fuel,
    durationUs: o.durationUs,
    decidedBy: o.decidedBy,
    request,
  };
  out.result(json, () => {
    const c = out.colours;
    const rows: Array<[string, string[]]> = [
      ['decision', [o.decision === 'allow' ? c.pass('allow') : c.fail('deny')]],
      ['reason', [o.reason === '' ? '-' : o.reason]],
      ...(o.errorKind
        ? ([['error', [`${o.errorKind}${o.errorDetail ? `: ${o.errorDetail}` : ''}`]]] as Array<[string, string[]]>)
        : []),
      ['calls', o.capabilityCalls.length === 0 ? ['-'] : o.capabilityCalls.map(showCall)],
      [
        'logs',
        o.logs.length === 0
          ? ['-']
          : [
              ...o.logs.map((l) => `${l.level}: ${l.message}`),
              ...(o.droppedLogLines ? [`(${o.droppedLogLines} more dropped)`] : []),
            ],
      ],
      ['fuel', [`${o.fuelUsed} of ${ctx.fuel}`]],
      ['decided', [DECIDED_BY_TEXT[o.decidedBy]]],
      [
        'request',
        [
          `pid ${request.requesterPid} (uid ${request.requesterUid}) in VM ${ctx.o.vmName} asks ${request.bytes} for ${TARGET_HELP[ctx.o.target]}`,
        ],
      ],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    return rows.flatMap(([k, vs]) => vs.map((v, i) => `${(i === 0 ? k : '').padEnd(w)}  ${v}`)).join('\n');
  });
}
