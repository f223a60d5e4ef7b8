// The README's "Writing a policy" block, run line by line as written, in order: from a checkout,
// then inside the new project, against a real daemon (CAPGATE_ADMIN_SOCKET), with no capgate or
// compiler on PATH. Only the project's location is changed (a temporary directory).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { REPO_ROOT, runProcess } from './support/run-cli.ts';

let dir: string;
const served = serveDaemonForFile();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-readme-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writingAPolicy(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('Writing a policy'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block.split('\n').filter((l) => l.trim() !== '');
}

describe("the README's Writing a policy", () => {
  it('runs in order, as written', { timeout: 600_000 }, async () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!/^npm_|^INIT_CWD$|^NODE_ENV$|^VITEST|^CAPGATE_/.test(k)) env[k] = v;
    env.PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((d) => !d.includes('node_modules'))
      .join(delimiter);
    env.CAPGATE_ADMIN_SOCKET = served.daemon.adminSocket;
    env.NO_COLOR = '1';
    const project = join(dir, 'my-policy');
    let cwd = REPO_ROOT;
    const lines = writingAPolicy();
    expect(lines[0]).toMatch(/^npx capgate init my-policy /);
    for (const line of lines) {
      if (/^cd my-policy\s*$/.test(line)) {
        cwd = project;
        continue;
      }
      // The one change: the project goes to a temporary directory, not into the checkout.
      const command = cwd === REPO_ROOT ? line.replace(' my-policy ', ` ${project} `) : line;
      const r = await runProcess('sh', ['-c', command], { cwd, env });
      // `capgate eval` exits 1 on a deny; this one allows.
      expect(r.code, `${line}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    expect(existsSync(join(project, 'audit.json'))).toBe(true);
    const records = (JSON.parse(readFileSync(join(project, 'audit.json'), 'utf8')) as { records: unknown[] }).records;
    expect(Array.isArray(records)).toBe(true);
    // The push reached the daemon: my-policy is bound.
    const bound = await runProcess(
      process.execPath,
      [join(REPO_ROOT, 'runtime/cli/capgate.mjs'), 'policy', 'ls', '--json', '--socket', served.daemon.adminSocket],
      { cwd: REPO_ROOT, env },
    );
    expect(JSON.parse(bound.stdout)).toMatchObject({
      policies: [{ name: 'my-policy', revisions: [{ revision: 1, boundTo: ['set-memlock'] }] }],
    });
  });
});
