// What checking a request body costs on the daemon's main thread, per set-memlock request:
// JSON.parse alone (the baseline), then with the schema check the daemon runs
// (parseSetMemlockBody: compiled TypeBox + the u64 range), beside the hand-written check it
// replaced (kept here, verbatim in behaviour, only as the "before" of this table).
import { parseBytes, type ParseResult } from '../../runtime/wire/operations.ts';
import { parseSetMemlockBody, SetMemlockBody, compileValidator } from '../../runtime/wire/schemas/index.ts';
import { sample, type BenchRow } from './table.ts';

const BODY = Buffer.from(JSON.stringify({ targetPid: 4242, bytes: '17179869184' }));
const BATCH = 1000;

function handCheckedBefore(body: unknown): ParseResult<{ targetPid: number; bytes: bigint }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, message: 'the body must be a JSON object' };
  const extra = Object.keys(body).filter((k) => k !== 'targetPid' && k !== 'bytes');
  if (extra.length > 0) return { ok: false, message: `unknown field(s): ${extra.join(', ')}` };
  const { targetPid, bytes } = body as { targetPid?: unknown; bytes?: unknown };
  if (typeof targetPid !== 'number' || !Number.isInteger(targetPid) || targetPid <= 0 || targetPid > 0xffff_ffff)
    return { ok: false, message: 'targetPid must be a positive integer pid' };
  const parsed = parseBytes(bytes);
  return parsed.ok ? { ok: true, value: { targetPid, bytes: parsed.value } } : parsed;
}

/** Per-body microseconds, timed over batches of BATCH bodies (one body is below the timer's resolution). */
async function perBody(check: (value: unknown) => boolean): Promise<number[]> {
  const samples = await sample(
    () => {
      for (let i = 0; i < BATCH; i++)
        if (!check(JSON.parse(BODY.toString('utf8')))) throw new Error('the bench body was refused');
    },
    400,
    100,
  );
  return samples.map((us) => us / BATCH);
}

export const BODY_BASELINE = 'JSON.parse of the body';

export async function bodyValidationRows(): Promise<BenchRow[]> {
  const schema = compileValidator(SetMemlockBody);
  const rows: BenchRow[] = [];
  // Interleaved rounds, so that a burst of load from other processes lands on every row alike.
  const cases: Array<[string, (v: unknown) => boolean]> = [
    [BODY_BASELINE, (v) => v !== undefined],
    ['JSON.parse + hand-written check (before)', (v) => handCheckedBefore(v).ok],
    ['JSON.parse + parseSetMemlockBody (schema + u64 range)', (v) => parseSetMemlockBody(v).ok],
    ['JSON.parse + compiled schema check alone', (v) => schema.check(v)],
  ];
  for (const [name] of cases) rows.push({ name, samplesUs: [] });
  for (let round = 0; round < 3; round++) {
    for (const [i, [, check]] of cases.entries()) rows[i]!.samplesUs.push(...(await perBody(check)));
  }
  return rows;
}
