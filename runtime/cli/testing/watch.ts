// `capgate test --watch`: rerun the scenario whenever the policy, the scenario or a source file
// changes; a source change first rebuilds with the project's `npm run build`. Runs until
// SIGINT/SIGTERM, then exits with the last run's status.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Output } from '../output/output.ts';

/** Directories that hold outputs and dependencies, never sources. */
const NOT_SOURCES = new Set(['node_modules', '.git', 'target', 'build', '.capgate']);
/** A bound on watched directories: a project is small; a home directory is not a project. */
const MAX_DIRS = 500;
const SETTLE_MS = 150;

export interface WatchTarget {
  policyFile: string;
  scenarioFile: string;
}

interface Project {
  root: string;
  /** `npm run build` when package.json has a build script. */
  build: boolean;
}

/** The project around the scenario: the nearest directory with a package.json, else the scenario's. */
export function findProject(scenarioFile: string): Project {
  let dir = dirname(resolve(scenarioFile));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      let build = false;
      try {
        build =
          typeof (JSON.parse(readFileSync(pkg, 'utf8')) as { scripts?: Record<string, unknown> }).scripts?.build ===
          'string';
      } catch {
        // not JSON: watch, but do not build
      }
      return { root: dir, build };
    }
    const up = dirname(dir);
    if (up === dir) return { root: dirname(resolve(scenarioFile)), build: false };
    dir = up;
  }
}

/** Watches every source directory under root (fs.watch per directory: no recursion into target/). */
class TreeWatcher {
  readonly #watchers = new Map<string, FSWatcher>();

  constructor(
    root: string,
    private readonly onChange: (path: string) => void,
  ) {
    this.#add(root);
  }

  #add(dir: string): void {
    if (this.#watchers.has(dir) || this.#watchers.size >= MAX_DIRS) return;
    let w: FSWatcher;
    try {
      w = watch(dir, (_event, name) => {
        if (name === null) return;
        const path = join(dir, name.toString());
        if (isDirectory(path) && !NOT_SOURCES.has(basename(path))) this.#add(path);
        this.onChange(path);
      });
    } catch {
      return; // vanished or unreadable: nothing to watch there
    }
    this.#watchers.set(dir, w);
    for (const entry of safeReaddir(dir)) {
      const path = join(dir, entry);
      if (!NOT_SOURCES.has(entry) && isDirectory(path)) this.#add(path);
    }
  }

  close(): void {
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function runBuild(root: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((done) => {
    const child = spawn('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (e) => done({ ok: false, output: `could not run npm: ${e.message}` }));
    child.on('close', (code) => done({ ok: code === 0, output }));
  });
}

export async function watchAndRerun(out: Output, target: WatchTarget, runOnce: () => Promise<number>): Promise<number> {
  const project = findProject(target.scenarioFile);
  const policy = resolve(target.policyFile);
  const scenario = resolve(target.scenarioFile);
  const say = (line: string): void => {
    process.stdout.write(`${out.colours.dim(`[watch] ${line}`)}\n`);
  };
  let last = await runOnce().catch((e: unknown) => report(e));
  function report(e: unknown): number {
    process.stdout.write(`${out.colours.fail('error:')} ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }

  // Changes are collected until they settle, then handled one batch at a time.
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let builtPolicyMtime = mtime(policy);

  const handle = async (changed: Set<string>): Promise<void> => {
    const isSource = (p: string): boolean => {
      const rel = relative(project.root, p);
      return (
        p !== policy && p !== scenario && !rel.startsWith('..') && !rel.split(sep).some((part) => NOT_SOURCES.has(part))
      );
    };
    const sources = [...changed].filter(isSource);
    const policyChanged = changed.has(policy) && mtime(policy) !== builtPolicyMtime;
    if (sources.length === 0 && !policyChanged && !changed.has(scenario)) return;
    const relevant = [...sources, ...(policyChanged ? [policy] : []), ...(changed.has(scenario) ? [scenario] : [])];
    const what = relevant
      .map((p) => relative(process.cwd(), p))
      .slice(0, 3)
      .join(', ');
    if (sources.length > 0 && project.build) {
      say(`${what} changed: rebuilding (npm run build)`);
      const b = await runBuild(project.root);
      builtPolicyMtime = mtime(policy);
      if (!b.ok) {
        process.stdout.write(b.output.endsWith('\n') || b.output === '' ? b.output : `${b.output}\n`);
        say('the build failed; fix it and save again');
        last = 1;
        return;
      }
    } else say(`${what} changed: rerunning`);
    builtPolicyMtime = mtime(policy);
    last = await runOnce().catch((e: unknown) => report(e));
    say('waiting for changes');
  };

  const onChange = (path: string): void => {
    pending.add(path);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      const batch = pending;
      pending = new Set();
      running = running.then(() => handle(batch));
    }, SETTLE_MS);
  };

  const tree = new TreeWatcher(project.root, onChange);
  // The scenario and the policy may live outside the project (or in its build/): watch their directories too.
  const extra = [...new Set([dirname(policy), dirname(scenario)])].map((dir) =>
    watch(dir, (_e, name) => {
      if (name !== null) onChange(join(dir, name.toString()));
    }),
  );
  // Only now: a change saved after this line is seen (scripts and tests wait for it).
  say(
    `watching ${relative(process.cwd(), project.root) || '.'}${project.build ? ' (sources: `npm run build`, then rerun)' : ''}, ${relative(process.cwd(), scenario)} and ${relative(process.cwd(), policy)}; Ctrl-C stops`,
  );

  await new Promise<void>((stop) => {
    process.once('SIGINT', () => stop());
    process.once('SIGTERM', () => stop());
  });
  if (timer !== undefined) clearTimeout(timer);
  tree.close();
  for (const w of extra) w.close();
  await running;
  return last;
}
