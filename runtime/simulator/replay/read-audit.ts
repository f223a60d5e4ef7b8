// Reads audit records as `capgate audit ls --json` ({records:[...]}), a JSON array, or
// `capgate audit tail --json` (one record per line) writes them, and checks their shape.
import { CAPABILITY_ERRORS, OPERATIONS } from '../../contract/types.ts';
import type { AuditCapabilityCall, AuditRecord } from '../../wire/index.ts';
import { parseBytes } from '../../wire/operations.ts';

export type ReadAuditResult = { ok: true; records: AuditRecord[] } | { ok: false; message: string };

const HOW = 'export records with `capgate audit ls --json > audit.json` (or `capgate audit tail --json`)';

export function readAuditRecords(text: string): ReadAuditResult {
  const trimmed = text.trim();
  let items: unknown[];
  if (trimmed === '') return { ok: false, message: `the audit file is empty; ${HOW}` };
  try {
    if (trimmed.startsWith('[') || trimmed.startsWith('{"records"') || /^\{\s*"records"/.test(trimmed)) {
      const parsed: unknown = JSON.parse(trimmed);
      const list = Array.isArray(parsed) ? parsed : (parsed as { records?: unknown }).records;
      if (!Array.isArray(list))
        return { ok: false, message: `expected a JSON array of audit records or {"records": [...]}; ${HOW}` };
      items = list;
    } else {
      items = trimmed
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as unknown);
    }
  } catch (e) {
    return { ok: false, message: `the audit file is not JSON (${(e as Error).message}); ${HOW}` };
  }
  const records: AuditRecord[] = [];
  for (const [i, item] of items.entries()) {
    const problem = shapeProblem(item);
    if (problem) return { ok: false, message: `audit record ${i + 1}: ${problem}; ${HOW}` };
    records.push(item as AuditRecord);
  }
  return { ok: true, records };
}

function shapeProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const r = v as Record<string, unknown>;
  if (typeof r.decisionId !== 'string') return 'missing "decisionId"';
  const req = r.requester as Record<string, unknown> | undefined;
  if (typeof req !== 'object' || req === null || typeof req.pid !== 'number' || typeof req.uid !== 'number')
    return 'missing "requester" {pid, uid}';
  if (!(OPERATIONS as readonly unknown[]).includes(r.operation))
    return `unknown operation ${JSON.stringify(r.operation)}`;
  if (typeof r.targetPid !== 'number') return 'missing "targetPid"';
  if (r.targetHostPid !== undefined && typeof r.targetHostPid !== 'number') return 'bad "targetHostPid"';
  if (!parseBytes(r.bytes).ok) return `bad "bytes" ${JSON.stringify(r.bytes)}`;
  if (r.decision !== 'allow' && r.decision !== 'deny') return 'missing "decision"';
  if (typeof r.reason !== 'string') return 'missing "reason"';
  if (r.vm !== null && (typeof r.vm !== 'object' || typeof (r.vm as { uuid?: unknown }).uuid !== 'string'))
    return 'bad "vm"';
  if (!Array.isArray(r.capabilityCalls)) return 'missing "capabilityCalls"';
  for (const c of r.capabilityCalls as AuditCapabilityCall[]) {
    if (c?.op === 'set-memlock') {
      if (
        typeof c.pid !== 'number' ||
        !parseBytes(c.bytes).ok ||
        !(c.result === 'ok' || (CAPABILITY_ERRORS as readonly string[]).includes(c.result))
      ) {
        return `bad set-memlock call ${JSON.stringify(c)}`;
      }
    } else if (c?.op === 'query-vm-identity') {
      if (typeof c.pid !== 'number' || (c.result !== 'some' && c.result !== 'none'))
        return `bad query-vm-identity call ${JSON.stringify(c)}`;
    } else return `unknown capability call ${JSON.stringify(c)}`;
  }
  return undefined;
}
