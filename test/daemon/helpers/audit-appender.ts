// A child process for the crash test of the audit store: appends batches of audit records and
// ingests and indexes them in batches of random sizes, in a tight loop, printing each decision id
// and its seq once its batch is committed (acknowledged: with durability 'full' once its
// fdatasync returned), until it is killed. The journal is emptied every 32 KiB (not 4 MiB), so
// kills also land around that (with 'full', in a segment's retirement and its WAL sync too).
// The WAL checkpoint worker runs beside it, as in the daemon, checkpointing every 16 pages (and
// made to look every 100 batches): kills also land in checkpoints.
// Usage: node --import runtime/bootstrap/register.mjs audit-appender.ts <db file> <run> <normal|full>
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Store } from '../../../runtime/store/store.ts';
import { WalCheckpointer } from '../../../runtime/store/checkpoint/wal-checkpointer.ts';
import type { NewAuditRecord } from '../../../runtime/store/audit-store.ts';

const VMS = [
  null,
  { uuid: 'uuid-0', name: 'vm-0' },
  { uuid: 'uuid-1', name: 'vm-1' },
  { uuid: 'uuid-2', name: 'vm-2' },
];
const POLICIES = [null, 'pa', 'pb'];
const T0 = Date.UTC(2026, 0, 1);

/** The record number `i` of run `run`: every field follows from them, so the test can recompute it. */
export function crashRecord(run: number, i: number): NewAuditRecord {
  const vm = VMS[i % VMS.length]!;
  const policy = POLICIES[i % POLICIES.length]!;
  return {
    decisionId: `r${run}-${i}`,
    time: new Date(T0 + run * 86_400_000 + i).toISOString(),
    requester: { pid: 1000 + i, uid: 0, gid: 0 },
    vm: vm ? { ...vm, id: 1, labels: [] } : null,
    operation: 'set-memlock',
    targetPid: 2000 + i,
    bytes: String(4096 * i),
    policy: policy ? { name: policy, revision: 1, sha256: 'x'.repeat(64) } : null,
    decision: i % 5 === 0 ? 'deny' : 'allow',
    reason: i % 5 === 0 ? 'over-cap' : '',
    capabilityCalls: [],
    logs: [],
    fuelUsed: i,
    durationUs: 1,
    totalUs: 2,
  };
}

async function main(file: string, run: number, durability: 'normal' | 'full'): Promise<void> {
  const store = Store.open(file, durability, { journalTruncateBytes: 32 * 1024 });
  const checkpointer = new WalCheckpointer({ database: file, durability, thresholdPages: 16, pollMs: 2 });
  await checkpointer.ready();
  process.stdout.write('open\n');
  let i = 0;
  let iterations = 0;
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 8);
    const batch = Array.from({ length: n }, () => crashRecord(run, i++));
    const seqs = store.audit.append(batch);
    if (durability === 'full') await store.audit.syncNow();
    // Once printed, the parent knows it was committed. A pipe its reader does not empty makes
    // the write queue in memory instead of blocking: wait for it, so the appender never runs
    // ahead of the test that kills it (a test stalled under load once let one append for half an
    // hour, to gigabytes of memory and database).
    if (!process.stdout.write(`${batch.map((r, k) => `${r.decisionId} ${seqs[k]}`).join('\n')}\n`))
      await once(process.stdout, 'drain');
    // Now and then the checkpoint worker is made to look at once (as its own poll would, but
    // whatever the machine's load), so that checkpoints run in every run the test kills.
    if (++iterations % 100 === 0) await checkpointer.checkNow();
    const dice = Math.random();
    if (dice < 0.05) {
      const rows = 1 + Math.floor(Math.random() * 600);
      store.audit.ingestSome(rows);
      store.audit.indexSome(rows);
    }
    // Into audit_log without indexing: kills then also find the log ahead of the index.
    else if (dice < 0.07) store.audit.ingestAll();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  void main(process.argv[2]!, Number(process.argv[3]), process.argv[4] === 'full' ? 'full' : 'normal');
