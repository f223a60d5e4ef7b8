// Request body parsing of the request channel: bytes forms, pid checks, no identity fields.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/daemon-process.ts';
import { MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import { ADMIN_ROUTES, formatBytes, parseBytes, pathOf } from '../../runtime/wire/index.ts';
import { parseSetMemlockBody } from '../../runtime/wire/schemas/index.ts';

describe('parseBytes', () => {
  it('accepts a safe integer, a decimal u64 string and "unlimited"', () => {
    expect(parseBytes(4096)).toEqual({ ok: true, value: 4096n });
    expect(parseBytes('18446744073709551614')).toEqual({ ok: true, value: MEMLOCK_UNLIMITED - 1n });
    expect(parseBytes('unlimited')).toEqual({ ok: true, value: MEMLOCK_UNLIMITED });
  });
  it('rejects negatives, fractions, unsafe numbers, non-decimal and > u64 strings', () => {
    for (const bad of [-1, 1.5, 2 ** 60, '0x10', '-1', '18446744073709551616', '', null, true, {}]) {
      const r = parseBytes(bad);
      expect(r.ok, String(bad)).toBe(false);
    }
    expect(parseBytes('18446744073709551616')).toMatchObject({
      ok: false,
      message: expect.stringContaining('larger than u64'),
    });
  });
  it('formats the wire form', () => {
    expect(formatBytes(MEMLOCK_UNLIMITED)).toBe('unlimited');
    expect(formatBytes(12n)).toBe('12');
  });
});

describe('formatBytes', () => {
  it('writes every count as its decimal digits (u64 max as "unlimited"), whichever counts came just before', () => {
    const counts = [
      5n,
      5n,
      7n,
      5n,
      9n,
      7n,
      7n,
      MEMLOCK_UNLIMITED,
      0n,
      -1n,
      0n,
      18446744073709551614n,
      5n,
      MEMLOCK_UNLIMITED,
    ];
    for (const n of counts)
      expect(formatBytes(n), String(n)).toBe(n === MEMLOCK_UNLIMITED ? 'unlimited' : n.toString());
  });
});

describe('parseSetMemlockBody', () => {
  it('accepts targetPid and bytes only', () => {
    expect(parseSetMemlockBody({ targetPid: 42, bytes: '100' })).toEqual({
      ok: true,
      value: { targetPid: 42, bytes: 100n },
    });
  });
  it('refuses identity claims in the body', () => {
    const r = parseSetMemlockBody({ targetPid: 42, bytes: 1, requesterPid: 1 });
    expect(r).toMatchObject({ ok: false, message: expect.stringContaining('requesterPid') });
  });
  it('names the path of each fault, and keeps the message short whatever the sender put in the body', () => {
    expect(parseSetMemlockBody({ targetPid: 0, bytes: 1 })).toMatchObject({
      ok: false,
      message: 'targetPid: must be a positive integer pid',
    });
    expect(parseSetMemlockBody({ targetPId: 5, bytes: 1 })).toMatchObject({
      ok: false,
      message: expect.stringContaining('targetPId: unknown key; did you mean targetPid?'),
    });
    expect(parseSetMemlockBody([])).toMatchObject({ ok: false, message: expect.stringMatching(/^must be an object/) });
    const manyKeys = Object.fromEntries(
      Array.from({ length: 5000 }, (_, i) => [`k${'x'.repeat(200)}${i}`, { deep: [[[[1]]]] }]),
    );
    const r = parseSetMemlockBody({ targetPid: 1, bytes: 1, ...manyKeys });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message.length).toBeLessThan(600);
    const deep = JSON.parse(`{"targetPid": 1, "bytes": ${'['.repeat(5000)}${']'.repeat(5000)}}`) as unknown;
    expect(parseSetMemlockBody(deep)).toMatchObject({
      ok: false,
      message: expect.stringContaining('bytes: must be a non-negative integer'),
    });
  });

  it('refuses bad pids and non-objects', () => {
    for (const b of [
      [],
      'x',
      null,
      { bytes: 1 },
      { targetPid: 0, bytes: 1 },
      { targetPid: 2 ** 32, bytes: 1 },
      { targetPid: '5', bytes: 1 },
    ]) {
      expect(parseSetMemlockBody(b).ok, JSON.stringify(b)).toBe(false);
    }
  });
});

describe('routes', () => {
  it('fills and encodes path parameters', () => {
    expect(pathOf(ADMIN_ROUTES.getRevision, { name: 'a b', revision: 3 })).toBe('/v1/policies/a%20b/revisions/3');
    expect(() => pathOf(ADMIN_ROUTES.getRevision, { name: 'x' })).toThrow(/revision/);
  });
});

describe('what loads the schema library', () => {
  // Static imports of compiled modules (type-only imports are gone from the JavaScript).
  function staticImports(file: string, seen = new Set<string>()): Set<string> {
    if (seen.has(file)) return seen;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm,
    )) {
      const spec = (m[1] ?? m[2])!;
      // Import lines inside template text (project scaffolds) name files that are not there.
      const target = path.resolve(path.dirname(file), spec);
      if (spec.startsWith('.')) {
        if (fs.existsSync(target)) staticImports(target, seen);
      } else if (!spec.includes('$')) seen.add(spec);
    }
    return seen;
  }
  const dist = (p: string): string => path.join(REPO_ROOT, 'dist', p);

  it('the client, the wire index and the CLI do not (their start-up stays quick); the daemon side does', () => {
    for (const entry of ['runtime/client/index.js', 'runtime/wire/index.js', 'runtime/cli/main.js']) {
      const loaded = [...staticImports(dist(entry))];
      expect(
        loaded.filter((m) => m.includes('typebox') || m.includes('/wire/schemas/') || m.includes('/config/schema')),
        entry,
      ).toEqual([]);
    }
    expect([...staticImports(dist('runtime/server/request/request-api.js'))]).toContain('@sinclair/typebox');
  });
});
