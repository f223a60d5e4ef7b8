// What the compile launcher takes from a compile process, which may be running an attacker's
// code (engine/compile/frames.ts, compile-reply-check.ts): a frame that announces more than its
// bound is refused before its bytes are kept, a frame that does not deserialize is refused, and
// a result crosses to the daemon only rebuilt from checked fields, with the job's own hash, size
// and limits. Each case is a message a taken-over process could send.
import { createHash } from 'node:crypto';
import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { BadReply, checkResult, checkSandboxReport } from '../../../runtime/engine/compile/compile-reply-check.ts';
import { frame, FrameError, FrameReader } from '../../../runtime/engine/compile/frames.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';

const bytes = new Uint8Array([0, 97, 115, 109, 13, 0, 1, 0]);
const sha256 = createHash('sha256').update(bytes).digest('hex');
const policy = {
  sha256,
  size: bytes.length,
  imports: ['a'],
  exports: ['evaluate'],
  hostFunctions: [],
  wit: 'world w {}',
};
const good = { ok: true, core: new Uint8Array([1, 2, 3]), policy: { ...policy, limits: DEFAULT_LIMITS } };

describe('frames from a compile process', () => {
  it('reassembles frames cut anywhere and several in one chunk', () => {
    const stream = Buffer.concat([frame({ a: 1 }), frame({ b: new Uint8Array(70_000) }), frame('c')]);
    const reader = new FrameReader(1 << 20);
    const got: unknown[] = [];
    for (let i = 0; i < stream.length; i += 4097) got.push(...reader.push(stream.subarray(i, i + 4097)));
    expect(got).toEqual([{ a: 1 }, { b: new Uint8Array(70_000) }, 'c']);
  });

  it('refuses a frame that announces more than its bound from its header alone', () => {
    const reader = new FrameReader(1000);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffff_fff0);
    expect(() => reader.push(header)).toThrow(FrameError);
    expect(() => new FrameReader(1000).push(header)).toThrow(/4294967280 bytes was announced; at most 1000/);
  });

  it('refuses a frame that does not deserialize', () => {
    const body = Buffer.from([0xff, 0x0f, 0x5c, 0x77, 0x77]); // a version header, then nonsense
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    expect(() => new FrameReader(1000).push(Buffer.concat([header, body]))).toThrow(/did not deserialize/);
  });
});

describe('a compile result from a compile process', () => {
  it('crosses rebuilt from checked fields: extra fields dropped, the limits the job gave', () => {
    const limits = { ...DEFAULT_LIMITS, fuel: 1234 };
    const r = checkResult(
      { ...good, extra: 'x', policy: { ...policy, limits: { ...DEFAULT_LIMITS, fuel: 1e15 }, module: {} } },
      bytes,
      limits,
    );
    expect(r).toEqual({ ok: true, core: new Uint8Array([1, 2, 3]), policy: { ...policy, limits } });
  });

  const refused: Array<[string, unknown, RegExp]> = [
    ['another policy’s hash', { ...good, policy: { ...policy, sha256: '0'.repeat(64) } }, /sha256 is not that/],
    ['another size', { ...good, policy: { ...policy, size: 1 } }, /size is not that/],
    ['a core that is not bytes', { ...good, core: [1, 2, 3] }, /core module is not bytes/],
    ['a WIT of 2 MB', { ...good, policy: { ...policy, wit: 'w'.repeat(2 << 20) } }, /WIT has 2097152 characters/],
    ['a million imports', { ...good, policy: { ...policy, imports: new Array(1e6).fill('a') } }, /at most 1024/],
    [
      'an import that is not a string',
      { ...good, policy: { ...policy, imports: [{}] } },
      /imports\[0\] is not a string/,
    ],
    ['a negative cost', { ...good, policy: { ...policy, instantiation: { tableEntries: -1 } } }, /tableEntries/],
    ['an unknown refusal kind', { ok: false, kind: 'allow', message: 'm' }, /no known kind/],
    ['a refusal of 1 MB', { ok: false, kind: 'invalid-module', message: 'm'.repeat(1 << 20) }, /at most 4096/],
    ['neither ok nor not', { ok: 'yes' }, /neither ok nor not/],
    ['not an object', 'result', /not an object/],
  ];
  it.each(refused)('refuses %s', (_name, value, message) => {
    expect(() => checkResult(value, bytes, DEFAULT_LIMITS)).toThrow(BadReply);
    expect(() => checkResult(value, bytes, DEFAULT_LIMITS)).toThrow(message);
  });

  it('takes a sandbox report only in its shape', () => {
    expect(checkSandboxReport({ applied: false, missing: 'seccomp' })).toEqual({ applied: false, missing: 'seccomp' });
    expect(() => checkSandboxReport({ applied: 'yes' })).toThrow(BadReply);
    expect(() => checkSandboxReport({ applied: true, ms: 1, closedFds: 'all', boundingSet: '' })).toThrow(BadReply);
    expect(
      serialize(checkSandboxReport({ applied: true, ms: 1, closedFds: [30], boundingSet: 'empty', x: 1 })),
    ).toEqual(serialize({ applied: true, ms: 1, closedFds: [30], boundingSet: 'empty' }));
  });
});
