// Scenario YAML -> validated Scenario, or every problem found with its line and column.
import { LineCounter, parseDocument, type Node, type YAMLError } from 'yaml';
import { CAPABILITY_ERRORS, LOG_LEVELS, OPERATIONS, type VmIdentity } from '../../contract/types.ts';
import { parseByteSize } from '../byte-size.ts';
import { YamlReader, type Field, type ScenarioIssue } from './yaml-reader.ts';
import type {
  CaseExpectation,
  ExpectedCall,
  ExpectedLog,
  ReasonMatcher,
  Scenario,
  ScenarioCase,
  ScenarioHost,
  ScenarioProcess,
  ScenarioRequest,
  ScenarioVm,
  ScenarioWorld,
} from './types.ts';

export type { ScenarioIssue } from './yaml-reader.ts';
export type ParseScenarioResult = { ok: true; scenario: Scenario } | { ok: false; issues: ScenarioIssue[] };

const U32 = 0xffff_ffffn;
const S32_MIN = -(2n ** 31n);
const S32_MAX = 2n ** 31n - 1n;
const PID_MAX = 4_194_304n; // Linux's largest pid_max

const WORLD_KEYS = ['vms', 'processes', 'absentPids'] as const;

export function parseScenario(text: string): ParseScenarioResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, intAsBigInt: true, uniqueKeys: false });
  const syntax = doc.errors.map((e) => syntaxIssue(e, text));
  // The parser recovers from most syntax errors: read on, so one typo does not hide every other
  // problem. A line with a syntax error reports only that (what follows from it is noise).
  const r = new YamlReader(lines);
  const scenario = readScenario(r, doc.contents as Node | null);
  const broken = new Set(syntax.map((i) => i.line));
  const issues = [...syntax, ...r.issues.filter((i) => !broken.has(i.line))];
  if (issues.length > 0 || scenario === undefined) return { ok: false, issues };
  return { ok: true, scenario };
}

function syntaxIssue(e: YAMLError, text: string): ScenarioIssue {
  const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
  const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return {
    line: pos.line,
    col: pos.col,
    message: `YAML syntax: ${first}${syntaxHint(e.code, text.split('\n')[pos.line - 1] ?? '')}`,
  };
}

/** A hint only where it applies: the line holds an unquoted value with ": " in it, or indentation is off. */
function syntaxHint(code: string, line: string): string {
  const valueWithColon = /^\s*(?:-\s+)?[^\s#'"{}[\],][^:#]*:\s+[^\s#'"{[|>][^#]*?:(?:\s|$)/.test(line);
  if (valueWithColon) return '; quote values that contain ": " (e.g. reason: "set-memlock-failed: not-permitted")';
  if (code === 'BAD_INDENT' || code === 'MULTILINE_IMPLICIT_KEY' || code === 'BLOCK_AS_IMPLICIT_KEY') {
    return '; check the indentation of this line and the lines below it';
  }
  return '';
}

function readScenario(r: YamlReader, root: Node | null): Scenario | undefined {
  const top = r.fields(root, 'the scenario', ['host', ...WORLD_KEYS, 'cases']);
  if (!top) return undefined;
  const hostField = top.get('host');
  // Default: a production daemon, which holds CAP_SYS_RESOURCE, with the policy under test bound.
  const host: ScenarioHost = {
    canRaiseHardLimit: true,
    policyBound: true,
    ...(hostField ? readHost(r, hostField.value, hostField.keyNode) : {}),
  };
  const issuesBefore = r.issues.length;
  const world = readWorld(r, top);
  // Pids of a world that did not read cleanly are not "declared nowhere": that would be noise.
  const worldOk = r.issues.length === issuesBefore;
  const cases: ScenarioCase[] = [];
  const casesField = top.get('cases');
  if (!casesField) r.fail(root, 'the scenario needs "cases": a list of requests with their expected decisions');
  else {
    const items = r.list(casesField.value, '"cases"', casesField.keyNode) ?? [];
    if (items.length === 0 && casesField.value !== null)
      r.fail(casesField.keyNode, '"cases" is empty; add at least one case');
    items.forEach((n, i) => {
      const c = readCase(r, n, i, worldOk ? world : undefined);
      if (c) cases.push(c);
    });
  }
  return { host, ...world, cases };
}

/** vms, processes and absentPids of a mapping (the scenario's, or a case's own). */
function readWorld(r: YamlReader, f: Map<string, Field>): ScenarioWorld {
  const vms: ScenarioVm[] = [];
  const vmsField = f.get('vms');
  if (vmsField)
    for (const n of r.list(vmsField.value, '"vms"', vmsField.keyNode) ?? []) {
      const vm = readVm(r, n);
      if (vm) vms.push(vm);
    }
  const processes: ScenarioProcess[] = [];
  const procField = f.get('processes');
  if (procField)
    for (const n of r.list(procField.value, '"processes"', procField.keyNode) ?? []) {
      const p = readProcess(r, n);
      if (p) processes.push(p);
    }
  const absentField = f.get('absentPids');
  const absentPids = readPids(r, absentField, '"absentPids" (pids that name no process)') ?? [];
  checkConsistency(
    r,
    { vms, processes, absentPids },
    vmsField?.value ?? null,
    procField?.value ?? null,
    absentField?.value ?? null,
  );
  return { vms, processes, absentPids };
}

function readHost(r: YamlReader, node: Node | null, at: Node): Partial<ScenarioHost> | undefined {
  const f = r.fields(node, '"host"', ['canRaiseHardLimit', 'policyBound'], at);
  if (!f) return undefined;
  const out: Partial<ScenarioHost> = {};
  const raise = f.get('canRaiseHardLimit');
  const bound = f.get('policyBound');
  const canRaise = raise && r.boolean(raise, '"canRaiseHardLimit" (whether the daemon holds CAP_SYS_RESOURCE)');
  const policyBound =
    bound &&
    r.boolean(bound, '"policyBound" (whether a policy is bound to the operation; false: the daemon denies no-policy)');
  if (canRaise !== undefined) out.canRaiseHardLimit = canRaise;
  if (policyBound !== undefined) out.policyBound = policyBound;
  return (raise && canRaise === undefined) || (bound && policyBound === undefined) ? undefined : out;
}

function readVm(r: YamlReader, node: Node): ScenarioVm | undefined {
  const f = r.fields(node, 'a VM', ['uuid', 'name', 'id', 'labels', 'pids']);
  if (!f) return undefined;
  const uuidF = r.required(f, 'uuid', 'a VM', node);
  const nameF = r.required(f, 'name', 'a VM', node);
  const idF = r.required(f, 'id', 'a VM', node);
  const uuid = uuidF && r.string(uuidF, '"uuid"');
  const name = nameF && r.string(nameF, '"name"');
  const id = idF && r.integer(idF.value, '"id" (a signed 32-bit VM id)', idF.keyNode, S32_MIN, S32_MAX);
  const labels: Array<[string, string]> = [];
  const labelsF = f.get('labels');
  if (labelsF && labelsF.value !== null) {
    const lf = r.fields(labelsF.value, '"labels"', ANY_KEY, labelsF.keyNode);
    for (const [k, field] of lf ?? []) {
      const v = r.text(field.value, `label "${k}"`, field.keyNode);
      if (v !== undefined) labels.push([k, v]);
    }
  }
  const pids = readPids(r, f.get('pids'), '"pids" of the VM');
  if (uuid === undefined || name === undefined || id === undefined || pids === undefined) return undefined;
  const identity: VmIdentity = { uuid, name, id, labels };
  return { identity, pids };
}

/** Label keys are free-form; this sentinel makes `fields` accept any of them. */
const ANY_KEY: readonly string[] = new Proxy([], {
  get: (t, p) => (p === 'includes' ? () => true : Reflect.get(t, p)),
});

function readPids(r: YamlReader, f: Field | undefined, what: string): number[] | undefined {
  if (!f || f.value === null) return [];
  const items = r.list(f.value, what, f.keyNode);
  if (!items) return undefined;
  const out: number[] = [];
  for (const n of items) {
    const pid = r.integer(n, 'a pid', f.keyNode, 1n, PID_MAX);
    if (pid !== undefined) out.push(pid);
  }
  return out.length === items.length ? out : undefined;
}

function readBytes(r: YamlReader, node: Node | null, what: string, at: Node): bigint | undefined {
  const v = r.scalarValue(node);
  if (typeof v !== 'string' && typeof v !== 'bigint' && typeof v !== 'number') {
    return r.fail(node ?? at, `${what} must be a byte size such as 8Gi, 512Mi, 16G, 65536 or unlimited`);
  }
  const parsed = parseByteSize(v);
  if (!parsed.ok) return r.fail(node, `${what}: ${parsed.message}`);
  return parsed.bytes;
}

function readProcess(r: YamlReader, node: Node): ScenarioProcess | undefined {
  const f = r.fields(node, 'a process', ['pid', 'memlock']);
  if (!f) return undefined;
  const pidF = r.required(f, 'pid', 'a process', node);
  const pid = pidF && r.integer(pidF.value, '"pid"', pidF.keyNode, 1n, PID_MAX);
  const mlF = r.required(
    f,
    'memlock',
    'a process (its RLIMIT_MEMLOCK: "8Mi" for soft and hard, or {soft: 64Ki, hard: 8Mi})',
    node,
  );
  if (!mlF || pid === undefined) return undefined;
  const v = r.scalarValue(mlF.value);
  if (v !== undefined) {
    const both = readBytes(r, mlF.value, '"memlock"', mlF.keyNode);
    return both === undefined ? undefined : { pid, memlock: { soft: both, hard: both } };
  }
  const lf = r.fields(mlF.value, '"memlock"', ['soft', 'hard'], mlF.keyNode);
  if (!lf) return undefined;
  const softF = r.required(lf, 'soft', '"memlock"', mlF.value);
  const hardF = r.required(lf, 'hard', '"memlock"', mlF.value);
  const soft = softF && readBytes(r, softF.value, '"soft"', softF.keyNode);
  const hard = hardF && readBytes(r, hardF.value, '"hard"', hardF.keyNode);
  if (soft === undefined || hard === undefined) return undefined;
  if (soft > hard)
    return r.fail(softF!.value, `soft limit is above the hard limit; the kernel never allows that, lower "soft"`);
  return { pid, memlock: { soft, hard } };
}

function readCase(
  r: YamlReader,
  node: Node,
  index: number,
  scenarioWorld: ScenarioWorld | undefined,
): ScenarioCase | undefined {
  const f = r.fields(node, `case ${index + 1}`, ['name', 'request', 'expect', 'host', ...WORLD_KEYS]);
  if (!f) return undefined;
  const what = `case ${index + 1}`;
  const nameF = f.get('name');
  const name = nameF ? r.string(nameF, '"name"') : what;
  const reqF = r.required(f, 'request', what, node);
  const expF = r.required(
    f,
    'expect',
    `${what} (at least "decision: allow", "decision: deny" or "decision: any")`,
    node,
  );
  const request = reqF && readRequest(r, reqF);
  const expect = expF && readExpect(r, expF);
  const hostF = f.get('host');
  const host = hostF ? readHost(r, hostF.value, hostF.keyNode) : {};
  // A case with any of vms/processes/absentPids has a world of its own.
  const before = r.issues.length;
  const world = WORLD_KEYS.some((k) => f.has(k)) ? readWorld(r, f) : undefined;
  const declared = world ? (r.issues.length === before ? world : undefined) : scenarioWorld;
  if (request && declared) checkDeclared(r, declared, request.pidNodes);
  if (name === undefined || !request || !expect || host === undefined) return undefined;
  return {
    name,
    request: request.request,
    expect,
    ...(hostF ? { host } : {}),
    ...(world ? { world } : {}),
    position: r.positionOf(node),
  };
}

interface ReadRequest {
  request: ScenarioRequest;
  /** Where each pid was written (the target defaults to the requester: no node of its own). */
  pidNodes: Array<[pid: number, node: Node | null, role: string]>;
}

function readRequest(r: YamlReader, at: Field): ReadRequest | undefined {
  const f = r.fields(
    at.value,
    '"request"',
    ['operation', 'requesterPid', 'requesterUid', 'targetPid', 'bytes'],
    at.keyNode,
  );
  if (!f) return undefined;
  const opF = f.get('operation');
  const operation = opF ? r.oneOf(opF, '"operation"', OPERATIONS) : 'set-memlock';
  const pidF = r.required(f, 'requesterPid', '"request" (the kernel-verified pid of the client)', at.value);
  const requesterPid = pidF && r.integer(pidF.value, '"requesterPid"', pidF.keyNode, 1n, PID_MAX);
  const uidF = f.get('requesterUid');
  const requesterUid = uidF ? r.integer(uidF.value, '"requesterUid"', uidF.keyNode, 0n, U32) : 0;
  const targetF = f.get('targetPid');
  const targetPid = targetF ? r.integer(targetF.value, '"targetPid"', targetF.keyNode, 0n, U32) : requesterPid;
  const bytesF = r.required(f, 'bytes', '"request"', at.value);
  const bytes = bytesF && readBytes(r, bytesF.value, '"bytes"', bytesF.keyNode);
  if (
    operation === undefined ||
    requesterPid === undefined ||
    requesterUid === undefined ||
    targetPid === undefined ||
    bytes === undefined
  ) {
    return undefined;
  }
  const pidNodes: ReadRequest['pidNodes'] = [[requesterPid, pidF!.value, 'requesterPid']];
  if (targetF) pidNodes.push([targetPid, targetF.value, 'targetPid']);
  return { request: { operation, requesterPid, requesterUid, targetPid, bytes }, pidNodes };
}

/**
 * Every pid a request names must be declared: a VM member, a host process, or a pid that names
 * no process. An undeclared pid is almost always a typo, which would silently test nothing.
 */
function checkDeclared(r: YamlReader, world: ScenarioWorld, pids: ReadRequest['pidNodes']): void {
  const declared = new Set<number>([
    ...world.vms.flatMap((vm) => vm.pids),
    ...world.processes.map((p) => p.pid),
    ...world.absentPids,
  ]);
  for (const [pid, node, role] of pids) {
    if (declared.has(pid)) continue;
    r.fail(
      node,
      `${role} ${pid} is declared nowhere: list it in a VM's "pids" (a member of that VM), in "processes" (a host process), or in "absentPids" (no such process)`,
    );
  }
}

/** "/regex/flags" is a pattern; anything else must match exactly. */
export function readMatcher(r: YamlReader, node: Node | null, what: string, at: Node): ReasonMatcher | undefined {
  const v = r.scalarValue(node);
  if (typeof v !== 'string')
    return r.fail(node ?? at, `${what} must be a string: exact text, or /a regular expression/`);
  const m = /^\/(.*)\/([dgimsuy]*)$/s.exec(v);
  if (!m) return { kind: 'exact', text: v };
  try {
    return { kind: 'pattern', regex: new RegExp(m[1]!, m[2]) };
  } catch (e) {
    return r.fail(
      node,
      `${what} is not a valid regular expression (${(e as Error).message}); fix it or write the exact text without slashes`,
    );
  }
}

function readExpect(r: YamlReader, at: Field): CaseExpectation | undefined {
  const f = r.fields(at.value, '"expect"', ['decision', 'reason', 'calls', 'logs', 'maxFuel'], at.keyNode);
  if (!f) return undefined;
  const decF = r.required(f, 'decision', '"expect"', at.value);
  const decision = decF && r.oneOf(decF, '"decision"', ['allow', 'deny', 'any'] as const);
  const out: CaseExpectation = { decision: decision ?? 'deny' };
  let ok = decision !== undefined;
  const reasonF = f.get('reason');
  if (reasonF) {
    const m = readMatcher(r, reasonF.value, '"reason"', reasonF.keyNode);
    if (m) out.reason = m;
    else ok = false;
  }
  const callsF = f.get('calls');
  if (callsF) {
    const items = callsF.value === null ? [] : r.list(callsF.value, '"calls"', callsF.keyNode);
    const calls = items?.map((n) => readCall(r, n));
    if (calls?.every((c): c is ExpectedCall => c !== undefined)) out.calls = calls;
    else ok = false;
  }
  const logsF = f.get('logs');
  if (logsF) {
    const items = logsF.value === null ? [] : r.list(logsF.value, '"logs"', logsF.keyNode);
    const logs = items?.map((n) => readLog(r, n));
    if (logs?.every((l): l is ExpectedLog => l !== undefined)) out.logs = logs;
    else ok = false;
  }
  const fuelF = f.get('maxFuel');
  if (fuelF) {
    const fuel = r.integer(fuelF.value, '"maxFuel"', fuelF.keyNode, 0n, BigInt(Number.MAX_SAFE_INTEGER));
    if (fuel !== undefined) out.maxFuel = fuel;
    else ok = false;
  }
  return ok ? out : undefined;
}

function readCall(r: YamlReader, node: Node): ExpectedCall | undefined {
  const f = r.fields(node, 'an expected call', ['op', 'pid', 'bytes', 'result']);
  if (!f) return undefined;
  const opF = r.required(f, 'op', 'an expected call', node);
  const op = opF && r.oneOf(opF, '"op"', ['set-memlock', 'query-vm-identity'] as const);
  const pidF = f.get('pid');
  const pid = pidF ? r.integer(pidF.value, '"pid"', pidF.keyNode, 0n, U32) : null;
  const resultF = f.get('result');
  const bytesF = f.get('bytes');
  if (op === undefined || pid === undefined) return undefined;
  const base = pid === null ? {} : { pid };
  if (op === 'query-vm-identity') {
    if (bytesF) return r.fail(bytesF.keyNode, 'query-vm-identity takes no "bytes"; remove it');
    const result = resultF ? r.oneOf(resultF, '"result" of query-vm-identity', ['some', 'none'] as const) : null;
    if (result === undefined) return undefined;
    return { op, ...base, ...(result ? { result } : {}) };
  }
  const bytes = bytesF ? readBytes(r, bytesF.value, '"bytes"', bytesF.keyNode) : null;
  const result = resultF ? r.oneOf(resultF, '"result" of set-memlock', ['ok', ...CAPABILITY_ERRORS] as const) : null;
  if (bytes === undefined || result === undefined) return undefined;
  return { op, ...base, ...(bytes !== null ? { bytes } : {}), ...(result ? { result } : {}) };
}

function readLog(r: YamlReader, node: Node): ExpectedLog | undefined {
  const f = r.fields(node, 'an expected log line', ['level', 'message']);
  if (!f) return undefined;
  const levelF = f.get('level');
  const level = levelF ? r.oneOf(levelF, '"level"', LOG_LEVELS) : null;
  const msgF = r.required(f, 'message', 'an expected log line', node);
  const message = msgF && readMatcher(r, msgF.value, '"message"', msgF.keyNode);
  if (level === undefined || !message) return undefined;
  return { ...(level ? { level } : {}), message };
}

/** Cross-field rules a YAML schema cannot express: one VM per pid, one entry per process. */
function checkConsistency(
  r: YamlReader,
  world: ScenarioWorld,
  vmsNode: Node | null,
  procNode: Node | null,
  absentNode: Node | null,
): void {
  const owner = new Map<number, string>();
  const uuids = new Set<string>();
  for (const vm of world.vms) {
    if (uuids.has(vm.identity.uuid)) r.fail(vmsNode, `two VMs share uuid ${vm.identity.uuid}; each VM needs its own`);
    uuids.add(vm.identity.uuid);
    for (const pid of vm.pids) {
      const prev = owner.get(pid);
      if (prev !== undefined)
        r.fail(
          vmsNode,
          `pid ${pid} is listed in VM "${prev}" and VM "${vm.identity.name}"; a process belongs to one VM`,
        );
      owner.set(pid, vm.identity.name);
    }
  }
  const seen = new Set<number>();
  for (const p of world.processes) {
    if (seen.has(p.pid)) r.fail(procNode, `process ${p.pid} is listed twice in "processes"; merge the entries`);
    seen.add(p.pid);
  }
  for (const pid of world.absentPids) {
    if (owner.has(pid) || seen.has(pid))
      r.fail(absentNode, `pid ${pid} is in "absentPids" and also exists (in a VM or in "processes"); keep one`);
  }
}
