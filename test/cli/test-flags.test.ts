// `capgate test` as a real process: --run, -q, --reporter junit|tap, --compare, --watch,
// --from-audit --write-scenario, and the daemon's default deadline.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSlowPolicy, SLOW_BYTES } from '../daemon/helpers/slow-policy.ts';
import { auditRecord, GPU_VM, vfioOnlyHistory } from '../simulator/support/audit-records.ts';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { CAPGATE_BIN, runCli } from './support/run-cli.ts';
import { spawnChild } from '../support/processes/children.ts';
import { ChildOutput } from '../support/wait.ts';

let guests: ExampleGuests;
let dir: string;

beforeAll(async () => {
  guests = await ensureExampleGuests();
  dir = mkdtempSync(join(tmpdir(), 'capgate-test-flags-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const lastLine = (s: string): string | undefined => s.trimEnd().split('\n').at(-1);

// memlock-cap allows up to memory-bytes + 256Mi; vfio-only requires the label vfio=true.
const TWO_RULES = `vms:
  - { uuid: u, name: "plain <&> vm", id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
cases:
  - name: "small <raise> & fine"
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: allow }
  - name: over the cap
    request: { requesterPid: 10, targetPid: 11, bytes: 8Gi }
    expect: { decision: deny, reason: over-cap }
  - name: wrong on purpose
    request: { requesterPid: 10, targetPid: 11, bytes: 2Gi }
    expect: { decision: deny }
`;

describe('capgate test: choosing and printing cases', () => {
  it('--run selects cases by a regular expression and counts the others as skipped', async () => {
    const s = file('two-rules.yaml', TWO_RULES);
    const r = await runCli(['test', guests.memlockCap, s, '--run', 'over|small']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS {2}small <raise> & fine/m);
    expect(r.stdout).toMatch(/^PASS {2}over the cap/m);
    expect(r.stdout).not.toMatch(/wrong on purpose/);
    expect(lastLine(r.stdout)).toBe('2 passed, 0 failed, 1 skipped');

    const none = await runCli(['test', guests.memlockCap, s, '--run', 'nothing-like-this']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--run \/nothing-like-this\/ matches none of the 3 cases/);
    expect(none.stderr).toMatch(/case names: "small <raise> & fine", "over the cap", "wrong on purpose"/);
  });

  it('-q prints only the failing cases and the summary', async () => {
    const r = await runCli(['test', guests.memlockCap, file('q.yaml', TWO_RULES), '-q']);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/PASS/);
    expect(r.stdout).toMatch(/^FAIL {2}wrong on purpose/m);
    expect(lastLine(r.stdout)).toBe('2 passed, 1 failed');
  });

  it('--reporter junit writes JUnit XML, escaped, with the failure and the logs', async () => {
    const s = file('junit.yaml', TWO_RULES);
    const r = await runCli(['test', guests.memlockCap, s, '--reporter', 'junit']);
    expect(r.code).toBe(1);
    const xml = r.stdout;
    expect(
      xml.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="capgate" tests="3" failures="1" errors="0"',
      ),
    ).toBe(true);
    expect(xml).toContain(`<testsuite name="${s}" tests="3" failures="1" errors="0" skipped="0"`);
    expect(xml).toMatch(
      /<testcase name="small &lt;raise&gt; &amp; fine" classname="[^"]+" file="[^"]+" line="4" time="\d+\.\d{6}">/,
    );
    expect(xml).toMatch(
      /<testcase name="over the cap" [^>]*>\s*<system-out>warn: request exceeds memory-bytes plus overhead[^<]*<\/system-out>/,
    );
    expect(xml).toMatch(
      /<testcase name="wrong on purpose"[^>]*>\s*<failure message="decision: expected deny, got allow" type="mismatch">decision: allow, fuel \d+/,
    );
    expect(xml.trimEnd().endsWith('</testsuite>\n</testsuites>')).toBe(true);
    // Every tag that opens closes: a cheap well-formedness check.
    const opened = [...xml.matchAll(/<(testsuites|testsuite|testcase|failure|system-out)[ >]/g)].length;
    const closed = [...xml.matchAll(/<\/(testsuites|testsuite|testcase|failure|system-out)>|\/>/g)].length;
    expect(closed).toBe(opened);
  });

  it('--reporter tap writes TAP 14 with a diagnostic block per failure', async () => {
    const r = await runCli(['test', guests.memlockCap, file('tap.yaml', TWO_RULES), '--reporter', 'tap']);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 4)).toEqual(['TAP version 14', '1..3', 'ok 1 - small <raise> & fine', 'ok 2 - over the cap']);
    expect(lines[4]).toBe('not ok 3 - wrong on purpose');
    expect(lines[5]).toBe('  ---');
    expect(lines[6]).toBe('  message: "decision: expected deny, got allow"');
    expect(lines).toContain('  ...');
    expect(lines.at(-1)).toBe('# 2 passed, 1 failed');
  });

  it('refuses two output formats at once', async () => {
    const r = await runCli(['test', guests.memlockCap, file('fmt.yaml', TWO_RULES), '--json', '--reporter', 'tap']);
    expect(r.code).toBe(2);
    expect((JSON.parse(r.stdout) as { error: { message: string } }).error.message).toMatch(
      /--json and --reporter tap are two output formats/,
    );
  });
});

describe('capgate test --compare', () => {
  it('lists every case two builds decide differently, and exits 1', async () => {
    const r = await runCli(['test', guests.memlockCap, guests.memlockCapScenario, '--compare', guests.vfioOnly]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^SAME {2}rule 2: target in another VM/m);
    expect(r.stdout).toMatch(
      new RegExp(
        `^DIFF {2}rules 4 and 7: exactly memory-bytes plus 256Mi is allowed .*\\n {6}decision: ${guests.memlockCap.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: allow\\n {16}${guests.vfioOnly.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: deny\\("vm-not-vfio"\\)`,
        'm',
      ),
    );
    expect(lastLine(r.stdout)).toMatch(/^\d+ same, \d+ different$/);
    const j = await runCli([
      'test',
      guests.memlockCap,
      guests.memlockCapScenario,
      '--compare',
      guests.vfioOnly,
      '--json',
    ]);
    const body = JSON.parse(j.stdout) as {
      same: number;
      different: number;
      cases: Array<{ name: string; same: boolean; differences: Array<{ what: string }> }>;
    };
    expect(body.same + body.different).toBe(11);
    expect(body.different).toBeGreaterThan(0);
  });

  it('finds no difference between a build and itself', async () => {
    const copy = join(dir, 'same.wasm');
    copyFileSync(guests.memlockCap, copy);
    const r = await runCli(['test', guests.memlockCap, guests.memlockCapScenario, '--compare', copy, '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('11 same, 0 different');
  });
});

describe('capgate test --from-audit --write-scenario', () => {
  it('turns the changed decisions into cases that pass with the new build and fail with the old', async () => {
    const records = [...vfioOnlyHistory()];
    const audit = file('audit.json', JSON.stringify({ records }));
    const out = join(dir, 'changed.yaml');
    const r = await runCli(['test', guests.memlockCap, '--from-audit', audit, '--write-scenario', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`wrote 2 case(s) to ${out}`);
    const yaml = readFileSync(out, 'utf8');
    expect(yaml).toMatch(/- name: "d-unlimited: allow -> deny\(over-cap\)"/);
    expect(yaml).toMatch(/# recorded 2026-.* by vfio-only rev 1: allow/);
    expect(yaml).not.toMatch(/d-outside/);

    const withNew = await runCli(['test', guests.memlockCap, out]);
    expect(withNew.stderr).toBe('');
    expect(lastLine(withNew.stdout)).toBe('2 passed, 0 failed');
    const withOld = await runCli(['test', guests.vfioOnly, out]);
    expect(withOld.code).toBe(1);
    expect(lastLine(withOld.stdout)).toBe('0 passed, 2 failed');
  });

  it('writes nothing when no decision changes, and needs --from-audit', async () => {
    const audit = file(
      'same-audit.json',
      JSON.stringify({
        records: [auditRecord({ vm: GPU_VM, targetPid: 51, bytes: 'unlimited', granted: true, decision: 'allow' })],
      }),
    );
    const out = join(dir, 'nothing.yaml');
    const r = await runCli(['test', guests.vfioOnly, '--from-audit', audit, '--write-scenario', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`no decision changed: ${out} not written`);
    expect(existsSync(out)).toBe(false);
    const alone = await runCli(['test', guests.vfioOnly, guests.vfioOnlyScenario, '--write-scenario', out]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/--write-scenario needs --from-audit/);
  });
});

describe("capgate test: the daemon's limits", () => {
  it("uses the daemon's 100 ms deadline unless told otherwise", { timeout: 120_000 }, async () => {
    const slow = join(dir, 'slow.wasm');
    writeFileSync(slow, await buildSlowPolicy());
    const s = file(
      'slow.yaml',
      `vms:\n  - { uuid: u, name: v, id: 1, pids: [10] }\ncases:\n  - request: { requesterPid: 10, bytes: ${SLOW_BYTES} }\n    expect: { decision: any }\n`,
    );
    // Fuel enough for seconds of spinning: only the deadline can stop it.
    const r = await runCli(['test', slow, s, '--fuel', '100000000000']);
    // The daemon's path: a first run on its thread, continued in a worker that the deadline stops.
    // It counts the worker thread's CPU time; on a machine too busy to give the thread a tenth of a
    // core, the wall-clock cap (10x) ends the run first (test/simulator/cpu-deadline.test.ts).
    expect(r.stdout).toMatch(
      /error: timeout: no decision within the 100 ms deadline \([\d.]+ ms of it in the first run\)(; the worker's thread had used [\d.]+ ms of CPU time|: its wall-clock cap of [\d.]+ ms \(10x\) passed first, [^;]*); the worker was terminated/,
    );
    const longer = await runCli(['test', slow, s, '--fuel', '100000000000', '--deadline-ms', '300']);
    expect(longer.stdout).toMatch(/error: timeout: no decision within the 300 ms deadline/);
    // And the daemon's fuel: without --fuel, the budget runs out first.
    const fuel = await runCli(['test', slow, s]);
    expect(fuel.stdout).toMatch(/error: fuel-exhausted/);
  });
});

describe('capgate test --watch', () => {
  it('rebuilds on a source change and reruns, until stopped', { timeout: 180_000 }, async () => {
    // A project whose "build" copies the build named in src/choice: no compiler needed.
    const project = join(dir, 'watched');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'src', 'choice'), guests.memlockCap);
    writeFileSync(
      join(project, 'make.mjs'),
      "import fs from 'node:fs';\nfs.mkdirSync('build', { recursive: true });\nfs.copyFileSync(fs.readFileSync('src/choice', 'utf8').trim(), 'build/policy.wasm');\n",
    );
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'watched', private: true, scripts: { build: 'node make.mjs' } }),
    );
    writeFileSync(
      join(project, 'scenario.yaml'),
      TWO_RULES.replace('expect: { decision: deny }', 'expect: { decision: any }'),
    );
    mkdirSync(join(project, 'build'));
    copyFileSync(guests.memlockCap, join(project, 'build', 'policy.wasm'));

    const child = spawnChild(process.execPath, [CAPGATE_BIN, 'test', 'build/policy.wasm', 'scenario.yaml', '--watch'], {
      cwd: project,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const out = new ChildOutput(child);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Each step runs `npm run build` or the scenario in a fresh process: slow on a loaded machine.
    const waitFor = (re: RegExp): Promise<unknown> => out.until(re, String(re), 120_000);
    try {
      await waitFor(/3 passed, 0 failed\n\[watch\] watching \.?/);
      // vfio-only denies the VM without vfio=true: "small <raise> & fine" now fails.
      writeFileSync(join(project, 'src', 'choice'), guests.vfioOnly);
      await waitFor(
        /\[watch\] src\/choice changed: rebuilding \(npm run build\)[\s\S]*FAIL {2}small <raise> & fine[\s\S]*1 passed, 2 failed\n\[watch\] waiting for changes/,
      );
      // A scenario change reruns without a build.
      writeFileSync(
        join(project, 'scenario.yaml'),
        TWO_RULES.replace(/decision: (allow|deny)(, reason: over-cap)?/g, 'decision: any'),
      );
      await waitFor(
        /\[watch\] scenario\.yaml changed: rerunning[\s\S]*3 passed, 0 failed\n\[watch\] waiting for changes/,
      );
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
