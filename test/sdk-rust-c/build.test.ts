// Rebuilds the Rust and C examples from source when the toolchain is installed: the result must
// behave as the README says, be byte-identical to the committed artifact when built with the
// toolchain recorded in BUILD-INFO.json, embed no checkout path, and not depend on where the
// checkout lives.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { buildCExample, findCToolchain } from '../../scripts/build-guests/c.ts';
import {
  readBuildInfo,
  readPrebuilt,
  SDK_EXAMPLES,
  SDK_REPO_ROOT,
  sha256,
  type SdkLanguage,
} from '../../scripts/build-guests/prebuilt.ts';
import {
  buildRustExample,
  findRustToolchain,
  type BuiltExample,
  type SourceRoot,
} from '../../scripts/build-guests/rust.ts';
import { ToolchainMissingError } from '../../runtime/packaging/toolchains/run-tool.ts';
import { runCore } from './harness/run-core.ts';
import { SCENARIOS } from './scenarios.ts';

interface Builder {
  version: string;
  build(name: string, source?: SourceRoot): Promise<BuiltExample>;
}

function findBuilder(lang: SdkLanguage): Builder | string {
  try {
    if (lang === 'rust') {
      const t = findRustToolchain();
      return { version: t.version, build: (name, source) => buildRustExample(name, t, source) };
    }
    const t = findCToolchain();
    return { version: t.version, build: (name, source) => buildCExample(name, t, source) };
  } catch (e) {
    if (e instanceof ToolchainMissingError) return e.message;
    throw e;
  }
}

/** A copy of what a build reads, at a different absolute path. */
function copyCheckout(lang: SdkLanguage): string {
  const root = mkdtempSync(join(tmpdir(), 'capgate-relocated-checkout-'));
  for (const part of [
    join('host-api', lang),
    join('host-api', 'wit'),
    ...SDK_EXAMPLES.map((n) => join('guest-examples', lang, n)),
  ]) {
    cpSync(join(SDK_REPO_ROOT, part), join(root, part), {
      recursive: true,
      filter: (src) => !src.includes(`${'/'}target`),
    });
  }
  return root;
}

describe.each(['rust', 'c'] as const)('%s examples rebuilt from source', (lang) => {
  const builder = findBuilder(lang);
  if (typeof builder === 'string') console.warn(`SKIP ${lang} rebuild tests: ${builder}`);
  const info = readBuildInfo(lang);
  const sameToolchain = typeof builder !== 'string' && info?.toolchain === builder.version;
  if (typeof builder !== 'string' && !sameToolchain) {
    console.warn(
      `${lang}: installed toolchain "${builder.version}" differs from the committed artifacts' "${info?.toolchain}": checking behaviour, not bytes`,
    );
  }
  const relocated: string[] = [];
  afterAll(() => {
    for (const dir of relocated) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(typeof builder === 'string').each(SDK_EXAMPLES.map((n) => [n]))(
    '%s: behaves as specified, byte-identical to prebuilt/',
    async (name) => {
      if (typeof builder === 'string') return;
      const { core, component } = await builder.build(name);
      const module = new WebAssembly.Module(core);
      for (const s of SCENARIOS[name])
        expect(runCore(module, s.request, createSimulatedCapabilities(s.world)), s.name).toEqual(s.expected);
      // No absolute checkout path (reproducible across machines).
      expect(Buffer.from(component).includes(Buffer.from(SDK_REPO_ROOT))).toBe(false);
      if (sameToolchain) {
        expect(sha256(component)).toBe(info?.artifacts[name]?.sha256);
        expect(Buffer.from(component).equals(Buffer.from(readPrebuilt(lang, name)))).toBe(true);
      }
    },
  );

  it.skipIf(typeof builder === 'string')('a checkout at another path builds the same bytes', async () => {
    if (typeof builder === 'string') return;
    const root = copyCheckout(lang);
    relocated.push(root);
    const here = await builder.build('memlock-cap');
    const there = await builder.build('memlock-cap', { root });
    expect(Buffer.from(there.component).equals(Buffer.from(here.component))).toBe(true);
  });
});
