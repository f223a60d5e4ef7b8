// `capgate audit ls`, `capgate audit show <id>` and `capgate audit tail [--follow]`: the decision log.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { AuditQuery, AuditRecord } from '../../wire/index.ts';
import { AUDIT_QUERY_MAX_LIMIT } from '../../wire/index.ts';
import { formatWireBytes } from '../../simulator/byte-size.ts';
import { withAdmin } from '../daemon-client.ts';
import { registerAuditShow } from './audit-show.ts';
import { examples, positiveIntArg, withAdminSocket, withJson } from '../options.ts';
import { toJson } from '../output/json.ts';
import { createOutput, type Output } from '../output/output.ts';
import { formatTable } from '../output/table.ts';

interface Filters {
  socket?: string;
  json: boolean;
  vm?: string;
  decision?: 'allow' | 'deny';
  policy?: string;
  since?: string;
  until?: string;
}

/** "10m", "2h", "1d" ago, or an ISO 8601 time / epoch milliseconds passed through. */
function timeArg(value: string): string {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(rel[1]) * unit).toISOString();
  }
  if (/^\d+$/.test(value) || !Number.isNaN(Date.parse(value))) return value;
  throw new InvalidArgumentError(
    `"${value}" is not a time: use ISO 8601 (2026-01-31T12:00:00Z), epoch milliseconds, or a duration ago (30s, 10m, 2h, 1d)`,
  );
}

function withFilters(cmd: Command): Command {
  return withJson(withAdminSocket(cmd))
    .option('--vm <uuid-or-name>', 'only decisions of this VM')
    .addOption(new Option('--decision <decision>', 'only allow or only deny').choices(['allow', 'deny']))
    .option('--policy <name>', 'only decisions made by this policy')
    .option('--since <time>', 'from this time (ISO 8601, epoch ms, or 10m/2h/1d ago)', timeArg)
    .option('--until <time>', 'before this time', timeArg);
}

function query(f: Filters): AuditQuery {
  const q: AuditQuery = {};
  if (f.vm) q.vm = f.vm;
  if (f.decision) q.decision = f.decision;
  if (f.policy) q.policy = f.policy;
  if (f.since) q.since = f.since;
  if (f.until) q.until = f.until;
  return q;
}

function rows(out: Output, records: AuditRecord[]): string[][] {
  return records.map((r) => [
    r.time,
    // Ids are time-ordered (UUIDv7): their head repeats the time column, their tail tells them apart.
    `…${r.decisionId.slice(-8)}`,
    r.vm?.name ?? '-',
    `${r.requester.pid}/${r.requester.uid}`,
    r.targetHostPid === undefined ? String(r.targetPid) : `${r.targetPid}→${r.targetHostPid}`,
    formatWireBytes(r.bytes),
    r.decision === 'allow' ? out.colours.pass('allow') : out.colours.fail('deny'),
    r.reason,
    r.policy ? `${r.policy.name}@${r.policy.revision}` : '-',
    String(r.fuelUsed),
  ]);
}

const COLUMNS = [
  { header: 'time' },
  { header: 'decision id' },
  { header: 'vm' },
  { header: 'pid/uid' },
  { header: 'target', align: 'right' as const },
  { header: 'bytes', align: 'right' as const },
  { header: 'decision' },
  { header: 'reason' },
  { header: 'policy' },
  { header: 'fuel', align: 'right' as const },
];

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read the decision log of a running daemon');

  const ls = withFilters(audit.command('ls').description('list decisions, newest first'))
    .option(
      '--limit <n>',
      `at most this many (1..${AUDIT_QUERY_MAX_LIMIT})`,
      positiveIntArg('--limit', AUDIT_QUERY_MAX_LIMIT),
      50,
    )
    .option('--all', 'follow cursors and return every matching record', false);
  examples(ls, [
    'capgate audit ls --decision deny --since 1h',
    'capgate audit ls --vm db-vm --limit 10',
    'capgate audit ls --json --all --since 1d > audit.json   # then: capgate test new.wasm --from-audit audit.json',
  ]);
  ls.action(async (o: Filters & { limit: number; all: boolean }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const records: AuditRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await c.queryAudit({ ...query(o), limit: o.limit, ...(cursor ? { cursor } : {}) });
        records.push(...page.records);
        cursor = page.nextCursor;
      } while (o.all && cursor);
      out.result({ records, ...(cursor ? { nextCursor: cursor } : {}) }, () =>
        records.length === 0
          ? 'no matching decisions'
          : formatTable(COLUMNS, rows(out, records)) + (cursor ? `\n(more: use --limit or --all)` : ''),
      );
    });
  });

  registerAuditShow(audit);

  const tail = withFilters(
    audit.command('tail').description('show the latest decisions; --follow keeps printing new ones'),
  )
    .option(
      '-n, --lines <n>',
      'how many recent decisions to show first',
      positiveIntArg('--lines', AUDIT_QUERY_MAX_LIMIT),
      10,
    )
    .option('-f, --follow', 'keep polling for new decisions until interrupted', false)
    .option('--interval-ms <ms>', 'poll interval with --follow', positiveIntArg('--interval-ms'), 1000);
  tail.addHelpText(
    'after',
    '\nWith --json, one record per line (JSON Lines), suitable for `capgate test --from-audit`.\n',
  );
  examples(tail, [
    'capgate audit tail',
    'capgate audit tail --follow --decision deny',
    'capgate audit tail -f --json >> audit.jsonl',
  ]);
  tail.action(async (o: Filters & { lines: number; follow: boolean; intervalMs: number }) => {
    const out = createOutput(o.json);
    const print = (records: AuditRecord[], header: boolean): void => {
      if (o.json) for (const r of records) process.stdout.write(`${toJson(r).replace(/\n\s*/g, '')}\n`);
      else if (records.length > 0) {
        const table = formatTable(COLUMNS, rows(out, records)).split('\n');
        process.stdout.write(`${(header ? table : table.slice(1)).join('\n')}\n`);
      }
    };
    await withAdmin(o.socket, async (c) => {
      const latest = (await c.queryAudit({ ...query(o), limit: o.lines, order: 'desc' })).records.reverse();
      print(latest, true);
      if (!o.follow) return;
      let lastSeq = latest.at(-1)?.seq ?? 0;
      let since = latest.at(-1)?.time ?? o.since ?? new Date().toISOString();
      let stop = false;
      const onSignal = (): void => {
        stop = true;
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      while (!stop) {
        await new Promise((r) => setTimeout(r, o.intervalMs));
        if (stop) break;
        // `since` is inclusive at millisecond precision: drop what was already printed by seq.
        const page = await c.queryAudit({ ...query(o), since, order: 'asc', limit: AUDIT_QUERY_MAX_LIMIT });
        const fresh = page.records.filter((r) => r.seq > lastSeq);
        print(fresh, lastSeq === 0 && fresh.length > 0 && latest.length === 0);
        if (fresh.length > 0) {
          lastSeq = fresh.at(-1)!.seq;
          since = fresh.at(-1)!.time;
        }
      }
    });
  });
}
