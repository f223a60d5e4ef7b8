// `capgate audit show <decision-id>`: one decision in full, its policy's log lines included.
// Takes the full id every request prints, or the tail `capgate audit ls` shows (…1a2b3c4d),
// looked up among the most recent decisions.
import type { Command } from 'commander';
import type { CapgateAdminClient } from '../../client/index.ts';
import { CapgateApiError } from '../../client/index.ts';
import { formatWireBytes } from '../../simulator/byte-size.ts';
import type { AuditCapabilityCall, AuditRecord } from '../../wire/index.ts';
import { AUDIT_QUERY_MAX_LIMIT } from '../../wire/index.ts';
import { CliError, usageError } from '../cli-error.ts';
import { withAdmin } from '../daemon-client.ts';
import { EXIT } from '../exit-codes.ts';
import { examples, withAdminSocket, withJson } from '../options.ts';
import { createOutput, type Output } from '../output/output.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How many recent decisions a short id is looked up among. */
const SHORT_ID_SCAN = 10 * AUDIT_QUERY_MAX_LIMIT;

async function findRecord(c: CapgateAdminClient, id: string): Promise<AuditRecord> {
  const wanted = id.replace(/^(…|\.\.\.)/, '').toLowerCase();
  if (!/^[0-9a-f-]{4,36}$/.test(wanted))
    throw usageError(
      `"${id}" is not a decision id`,
      'pass the id a request printed, or the tail `capgate audit ls` shows (…1a2b3c4d)',
    );
  if (UUID.test(wanted)) {
    try {
      return (await c.getAuditRecord(wanted)).record;
    } catch (e) {
      if (e instanceof CapgateApiError && e.code === 'not-found')
        throw new CliError(
          `no decision ${wanted} in the audit log`,
          EXIT.failed,
          'list recent decisions with `capgate audit ls`',
        );
      throw e;
    }
  }
  const found: AuditRecord[] = [];
  let cursor: string | undefined;
  let scanned = 0;
  do {
    const page = await c.queryAudit({ limit: AUDIT_QUERY_MAX_LIMIT, order: 'desc', ...(cursor ? { cursor } : {}) });
    scanned += page.records.length;
    found.push(...page.records.filter((r) => r.decisionId.toLowerCase().endsWith(wanted)));
    cursor = page.nextCursor;
  } while (cursor && scanned < SHORT_ID_SCAN && found.length < 2);
  if (found.length === 1) return found[0]!;
  if (found.length === 0)
    throw new CliError(
      `no decision ending in ${wanted} among the ${scanned} most recent`,
      EXIT.failed,
      'pass the full id: `capgate audit ls --json` lists them',
    );
  throw new CliError(
    `${wanted} ends more than one decision id (${found.map((r) => r.decisionId).join(', ')})`,
    EXIT.usage,
    'pass more of the id, or all of it',
  );
}

function showCall(c: AuditCapabilityCall): string {
  if (c.op === 'query-vm-identity') return `query-vm-identity(pid=${c.pid}) -> ${c.result}`;
  return `set-memlock(pid=${c.pid}, bytes=${formatWireBytes(c.bytes)}) -> ${c.result}${c.detail ? ` (${c.detail})` : ''}`;
}

export function describeRecord(out: Output, r: AuditRecord): string {
  const c = out.colours;
  const vm = r.vm
    ? `${r.vm.name} (${r.vm.uuid}, id ${r.vm.id})${r.vm.labels.length > 0 ? `  ${r.vm.labels.map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`
    : '- (the requester is in no registered VM)';
  const rows: Array<[string, string[]]> = [
    ['decision id', [r.decisionId]],
    ['time', [r.time]],
    ['requester', [`pid ${r.requester.pid}, uid ${r.requester.uid}, gid ${r.requester.gid}`]],
    ['vm', [vm]],
    [
      'request',
      [
        `${r.operation} of pid ${r.targetPid}${r.targetHostPid === undefined ? '' : ` (the requester's pid namespace; pid ${r.targetHostPid} here)`} to ${formatWireBytes(r.bytes)}`,
      ],
    ],
    [
      'policy',
      [
        r.policy
          ? `${r.policy.name} rev ${r.policy.revision} (sha256 ${r.policy.sha256.slice(0, 16)}…)`
          : '- (no policy ran)',
      ],
    ],
    ['decision', [r.decision === 'allow' ? c.pass('allow') : c.fail('deny')]],
    ['reason', [r.reason === '' ? '-' : r.reason]],
    ...(r.errorKind
      ? ([['error', [`${r.errorKind}${r.errorDetail ? `: ${r.errorDetail}` : ''}`]]] as Array<[string, string[]]>)
      : []),
    ['calls', r.capabilityCalls.length === 0 ? ['-'] : r.capabilityCalls.map(showCall)],
    ['logs', r.logs.length === 0 ? ['-'] : r.logs.map((l) => `${l.level}: ${l.message}`)],
    ['fuel', [String(r.fuelUsed)]],
    ['time taken', [`${r.durationUs} µs in the policy, ${r.totalUs} µs in all`]],
    ['record', [`schema version ${r.schemaVersion}, seq ${r.seq}`]],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.flatMap(([k, vs]) => vs.map((v, i) => `${(i === 0 ? k : '').padEnd(w)}  ${v}`)).join('\n');
}

export function registerAuditShow(audit: Command): void {
  const show = withJson(
    withAdminSocket(
      audit
        .command('show')
        .description('show one decision in full: request, VM, policy, capability calls and log lines'),
    ),
  ).argument('<decision-id>', 'the id a request printed, or the tail `capgate audit ls` shows (…1a2b3c4d)');
  examples(show, [
    'capgate audit show 0192f0a4-6b1c-7d2e-9f30-1a2b3c4d5e6f',
    'capgate audit show …3c4d5e6f',
    'capgate audit show 3c4d5e6f --json',
  ]);
  show.action(async (id: string, o: { socket?: string; json: boolean }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const record = await findRecord(c, id);
      out.result({ record }, () => describeRecord(out, record));
    });
  });
}
