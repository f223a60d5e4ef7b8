// What the compile launcher takes from a compile process, which may be running an attacker's
// code (engine/compile/frames.ts, compile-reply-check.ts): a frame that announces more than its
// bound is refused before its bytes are kept, a frame that does not deserialize is refused, and
// a result crosses to the daemon only rebuilt from checked fields, with the job's own hash, size
// and limits. Each case is a message a taken-over process could send.
import { createHash } from 'node:crypto';
import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  BadReply,
  checkLandlockReport,
  checkResult,
  checkSandboxReport,
} from '../../../runtime/engine/compile/compile-reply-check.ts';
import { landlockShortfall } from '../../../runtime/engine/compile/compile-process.ts';
import { KNOWN_LANDLOCK_ABI, landlockSupport } from '../../../runtime/os/landlock.ts';
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
    const landlock = { abi: 7, threads: 'calling' };
    expect(
      serialize(checkSandboxReport({ applied: true, ms: 1, closedFds: [30], boundingSet: 'empty', landlock, x: 1 })),
    ).toEqual(serialize({ applied: true, ms: 1, closedFds: [30], boundingSet: 'empty', landlock }));
    // A report that says nothing of Landlock is not one.
    expect(() => checkSandboxReport({ applied: true, ms: 1, closedFds: [], boundingSet: 'empty' })).toThrow(
      /Landlock report is not an object/,
    );
  });

  const badLandlock: Array<[string, unknown, RegExp]> = [
    ['a fractional ABI', { abi: 6.5, threads: 'all' }, /not a version/],
    ['a huge ABI', { abi: 1e9, threads: 'all' }, /not a version/],
    ['threads of another kind', { abi: 7, threads: 'some' }, /neither all nor calling/],
    ['no domain and no reason', { abi: 0 }, /not a string/],
    ['a reason of 1 MB', { abi: 0, why: 'w'.repeat(1 << 20) }, /at most 4096/],
  ];
  it.each(badLandlock)('refuses a Landlock report with %s', (_name, value, message) => {
    expect(() => checkLandlockReport(value)).toThrow(BadReply);
    expect(() => checkLandlockReport(value)).toThrow(message);
  });
});

const kernel = landlockSupport();
describe.skipIf(!kernel.ok)("the daemon's word on a Landlock domain (this kernel has Landlock)", () => {
  const abi = kernel.ok ? Math.min(kernel.abi, KNOWN_LANDLOCK_ABI) : 0;
  it("takes the kernel's ABI, every thread in it after an exec, the calling one before TSYNC", () => {
    expect(landlockShortfall({ abi, threads: 'all' }, true)).toBeUndefined();
    expect(landlockShortfall({ abi, threads: 'calling' }, false)).toBe(
      abi >= 8 ? 'its Landlock domain leaves out threads of the process' : undefined,
    );
  });
  it('refuses no domain, an older ABI, or threads left out where all must be in', () => {
    expect(landlockShortfall(undefined, true)).toMatch(/entered no Landlock domain where the kernel has Landlock ABI/);
    expect(landlockShortfall({ abi: 0, why: 'the kernel has no Landlock' }, false)).toMatch(
      /entered no Landlock domain .*\(the kernel has no Landlock\)/,
    );
    expect(landlockShortfall({ abi: abi - 1, threads: 'all' }, true)).toMatch(/handles the rights of ABI/);
    expect(landlockShortfall({ abi, threads: 'calling' }, true)).toMatch(/leaves out threads/);
  });
});
