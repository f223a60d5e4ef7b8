// Scenario YAML -> validated Scenario, or every problem found with its line and column.
import { LineCounter, parseDocument, type Node } from 'yaml';
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
} from './types.ts';

export type { ScenarioIssue } from './yaml-reader.ts';
export type ParseScenarioResult = { ok: true; scenario: Scenario } | { ok: false; issues: ScenarioIssue[] };

const U32 = 0xffff_ffffn;
const S32_MIN = -(2n ** 31n);
const S32_MAX = 2n ** 31n - 1n;
const PID_MAX = 4_194_304n; // Linux's largest pid_max

export function parseScenario(text: string): ParseScenarioResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, intAsBigInt: true, uniqueKeys: false });
  const r = new YamlReader(lines);
  for (const e of doc.errors) {
    const pos = e.linePos?.[0] ?? { line: 0, col: 0 };
    const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    // The usual cause: an unquoted value containing ": " (e.g. a reason "set-memlock-failed: x").
    const hint = /mapping/i.test(first) ? '; quote values that contain ": "' : '';
    r.issues.push({ line: pos.line, col: pos.col, message: `YAML syntax: ${first}${hint}` });
  }
  if (r.issues.length > 0) return { ok: false, issues: r.issues };
  const root = doc.contents as Node | null;
  const top = r.fields(root, 'the scenario', ['host', 'vms', 'processes', 'cases']);
  if (!top) return { ok: false, issues: r.issues };

  const hostField = top.get('host');
  // Default: a production daemon, which holds CAP_SYS_RESOURCE; set false to exercise not-permitted.
  const host: ScenarioHost = { canRaiseHardLimit: true, ...(hostField ? readHost(r, hostField.value, hostField.keyNode) : {}) };
  const vms: ScenarioVm[] = [];
  const vmsField = top.get('vms');
  if (vmsField) for (const n of r.list(vmsField.value, '"vms"', vmsField.keyNode) ?? []) {
    const vm = readVm(r, n);
    if (vm) vms.push(vm);
  }
  const processes: ScenarioProcess[] = [];
  const procField = top.get('processes');
  if (procField) for (const n of r.list(procField.value, '"processes"', procField.keyNode) ?? []) {
    const p = readProcess(r, n);
    if (p) processes.push(p);
  }
  const cases: ScenarioCase[] = [];
  const casesField = top.get('cases');
  if (!casesField) r.fail(root, 'the scenario needs "cases": a list of requests with their expected decisions');
  else {
    const items = r.list(casesField.value, '"cases"', casesField.keyNode) ?? [];
    if (items.length === 0 && isNonNull(casesField.value)) r.fail(casesField.keyNode, '"cases" is empty; add at least one case');
    items.forEach((n, i) => {
      const c = readCase(r, n, i);
      if (c) cases.push(c);
    });
  }
  checkConsistency(r, vms, vmsField?.value ?? null, processes, procField?.value ?? null);
  if (r.issues.length > 0) return { ok: false, issues: r.issues };
  return { ok: true, scenario: { host, vms, processes, cases } };
}

function isNonNull(n: Node | null): boolean {
  return n !== null;
}

function readHost(r: YamlReader, node: Node | null, at: Node): Partial<ScenarioHost> | undefined {
  const f = r.fields(node, '"host"', ['canRaiseHardLimit'], at);
  const raise = f?.get('canRaiseHardLimit');
  if (!raise) return {};
  const v = r.boolean(raise, '"canRaiseHardLimit" (whether the daemon holds CAP_SYS_RESOURCE)');
  return v === undefined ? undefined : { canRaiseHardLimit: v };
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
  const pids = readPids(r, f.get('pids'), 'the VM');
  if (uuid === undefined || name === undefined || id === undefined || pids === undefined) return undefined;
  const identity: VmIdentity = { uuid, name, id, labels };
  return { identity, pids };
}

/** Label keys are free-form; this sentinel makes `fields` accept any of them. */
const ANY_KEY: readonly string[] = new Proxy([], { get: (t, p) => (p === 'includes' ? () => true : Reflect.get(t, p)) });

function readPids(r: YamlReader, f: Field | undefined, owner: string): number[] | undefined {
  if (!f) return [];
  const items = r.list(f.value, `"pids" of ${owner}`, f.keyNode);
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
  const mlF = r.required(f, 'memlock', 'a process (its RLIMIT_MEMLOCK: "8Mi" for soft and hard, or {soft: 64Ki, hard: 8Mi})', node);
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
  if (soft > hard) return r.fail(softF!.value, `soft limit is above the hard limit; the kernel never allows that, lower "soft"`);
  return { pid, memlock: { soft, hard } };
}

function readCase(r: YamlReader, node: Node, index: number): ScenarioCase | undefined {
  const f = r.fields(node, `case ${index + 1}`, ['name', 'request', 'expect', 'host']);
  if (!f) return undefined;
  const what = `case ${index + 1}`;
  const nameF = f.get('name');
  const name = nameF ? r.string(nameF, '"name"') : what;
  const reqF = r.required(f, 'request', what, node);
  const expF = r.required(f, 'expect', `${what} (at least "decision: allow" or "decision: deny")`, node);
  const request = reqF && readRequest(r, reqF);
  const expect = expF && readExpect(r, expF);
  const hostF = f.get('host');
  const host = hostF ? readHost(r, hostF.value, hostF.keyNode) : {};
  if (name === undefined || !request || !expect || host === undefined) return undefined;
  return { name, request, expect, ...(hostF ? { host } : {}), position: r.positionOf(node) };
}

function readRequest(r: YamlReader, at: Field): ScenarioRequest | undefined {
  const f = r.fields(at.value, '"request"', ['operation', 'requesterPid', 'requesterUid', 'targetPid', 'bytes'], at.keyNode);
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
  if (operation === undefined || requesterPid === undefined || requesterUid === undefined || targetPid === undefined || bytes === undefined) {
    return undefined;
  }
  return { operation, requesterPid, requesterUid, targetPid, bytes };
}

/** "/regex/flags" is a pattern; anything else must match exactly. */
export function readMatcher(r: YamlReader, node: Node | null, what: string, at: Node): ReasonMatcher | undefined {
  const v = r.scalarValue(node);
  if (typeof v !== 'string') return r.fail(node ?? at, `${what} must be a string: exact text, or /a regular expression/`);
  const m = /^\/(.*)\/([dgimsuy]*)$/s.exec(v);
  if (!m) return { kind: 'exact', text: v };
  try {
    return { kind: 'pattern', regex: new RegExp(m[1]!, m[2]) };
  } catch (e) {
    return r.fail(node, `${what} is not a valid regular expression (${(e as Error).message}); fix it or write the exact text without slashes`);
  }
}

function readExpect(r: YamlReader, at: Field): CaseExpectation | undefined {
  const f = r.fields(at.value, '"expect"', ['decision', 'reason', 'calls', 'logs', 'maxFuel'], at.keyNode);
  if (!f) return undefined;
  const decF = r.required(f, 'decision', '"expect"', at.value);
  const decision = decF && r.oneOf(decF, '"decision"', ['allow', 'deny'] as const);
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
    if (calls && calls.every((c): c is ExpectedCall => c !== undefined)) out.calls = calls;
    else ok = false;
  }
  const logsF = f.get('logs');
  if (logsF) {
    const items = logsF.value === null ? [] : r.list(logsF.value, '"logs"', logsF.keyNode);
    const logs = items?.map((n) => readLog(r, n));
    if (logs && logs.every((l): l is ExpectedLog => l !== undefined)) out.logs = logs;
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
function checkConsistency(r: YamlReader, vms: ScenarioVm[], vmsNode: Node | null, procs: ScenarioProcess[], procNode: Node | null): void {
  const owner = new Map<number, string>();
  const uuids = new Set<string>();
  for (const vm of vms) {
    if (uuids.has(vm.identity.uuid)) r.fail(vmsNode, `two VMs share uuid ${vm.identity.uuid}; each VM needs its own`);
    uuids.add(vm.identity.uuid);
    for (const pid of vm.pids) {
      const prev = owner.get(pid);
      if (prev !== undefined) r.fail(vmsNode, `pid ${pid} is listed in VM "${prev}" and VM "${vm.identity.name}"; a process belongs to one VM`);
      owner.set(pid, vm.identity.name);
    }
  }
  const seen = new Set<number>();
  for (const p of procs) {
    if (seen.has(p.pid)) r.fail(procNode, `process ${p.pid} is listed twice in "processes"; merge the entries`);
    seen.add(p.pid);
  }
}
