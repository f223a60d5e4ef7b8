// `capgate serve` with a config file and --config-json, as a real process: the inline JSON is
// merged key by key into the file's sections, and a typo stops the start with its path and the
// key it probably meant.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killChildren, spawnChild } from '../support/processes/children.ts';
import { CAPGATE_BIN, REPO_ROOT, runCli } from './support/run-cli.ts';

const dirs: string[] = [];

afterEach(async () => {
  // A daemon a failed test left running goes before its directories do.
  await killChildren('test');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function configFile(yaml: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-serve-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, yaml, { mode: 0o600 });
  return { dir, file };
}

/** Starts `capgate serve --json ...` and resolves with its start line once it is serving. */
function serve(
  args: string[],
): Promise<{ child: ChildProcess; started: { requestSocket: string; adminSocket: string } }> {
  const child = spawnChild(process.execPath, [CAPGATE_BIN, 'serve', '--json', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      // The start line is pretty-printed JSON: a block from "{" to "}" at the start of lines.
      const block = /^\{\n[\s\S]*?\n\}$/m.exec(out);
      if (block !== null)
        resolve({ child, started: JSON.parse(block[0]) as { requestSocket: string; adminSocket: string } });
    });
    child.once('exit', (code) => reject(new Error(`capgate serve exited (${code}) before serving:\n${out}\n${err}`)));
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

describe('capgate serve --config with --config-json', () => {
  it("merges the inline JSON into the file's request section instead of replacing it: the file's socketGroup stays", async () => {
    const { dir, file } = configFile(
      'runDir: run\nstateDir: state\nlog:\n  level: warn\nrequest:\n  socketGroup: 0\n  deadlineMs: 3000\n',
    );
    const { child, started } = await serve([
      '--config',
      file,
      '--config-json',
      JSON.stringify({ request: { deadlineMs: 5000 } }),
    ]);
    expect(started.requestSocket).toBe(path.join(dir, 'run', 'request.sock'));
    // socketGroup from the file makes the socket 0660; replacing the section would have left 0666.
    expect(fs.statSync(started.requestSocket).mode & 0o777).toBe(0o660);
    expect(await stop(child)).toBe(0);
  });

  it('refuses a misspelt key in the file, naming the file, the path and the key it probably meant', async () => {
    const { file } = configFile('engine:\n  limits:\n    deadlinMs: 50\n');
    const r = await runCli(['serve', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: engine.limits.deadlinMs: unknown key; did you mean deadlineMs?`);
  });

  it('refuses a deadline of 0 given inline, before anything starts', async () => {
    const { dir } = configFile('');
    const r = await runCli([
      'serve',
      '--run-dir',
      path.join(dir, 'run'),
      '--state-dir',
      path.join(dir, 'state'),
      '--config-json',
      '{"engine":{"limits":{"deadlineMs":0}}}',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--config-json: engine.limits.deadlineMs: must be an integer from 1 to 300000, got 0');
    expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
  });
});
