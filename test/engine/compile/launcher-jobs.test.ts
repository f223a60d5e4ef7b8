// Jobs from the daemon to its compile launcher (engine/compile/job-frames.ts): the bytes cross
// raw after a small head, written from the caller's own buffer (no copy of them on the daemon's
// main thread, where each copy was a fresh ArrayBuffer counted toward a mark-compact), and the
// launcher reads them with a bound: a head or a job announcing more than its bound is refused from
// its header alone, and a stream that ends inside a job is refused.
import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../../../runtime/engine/compile/frames.ts';
import { jobFrame, JobReader } from '../../../runtime/engine/compile/job-frames.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';

const limits = { ...DEFAULT_LIMITS, fuel: 4321 };
const bytesOf = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

function headOnly(value: unknown): Buffer {
  const body = serialize(value);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

describe('jobs on the compile launcher’s stdin', () => {
  it('carries the bytes raw after a small head: what is written is the caller’s buffer itself', () => {
    const bytes = bytesOf(300_000, 1);
    const [head, body] = jobFrame({ proc: 3, id: 7, limits }, bytes);
    expect(body).toBe(bytes);
    expect(head.length).toBeLessThan(2048);
  });

  it('reassembles jobs cut anywhere, several in one chunk, an empty one among them', () => {
    const sent = [bytesOf(70_000, 1), bytesOf(0, 2), bytesOf(5, 3), bytesOf(200_000, 4)];
    const stream = Buffer.concat(sent.flatMap((b, i) => jobFrame({ proc: 1, id: i + 1, limits }, b)));
    for (const step of [1, 7, 4097, 65_536, stream.length]) {
      const reader = new JobReader(64 * 1024, 1 << 20);
      const got = [];
      for (let i = 0; i < stream.length; i += step) got.push(...reader.push(stream.subarray(i, i + step)));
      reader.end();
      expect(got.map((j) => j.head)).toEqual(sent.map((b, i) => ({ proc: 1, id: i + 1, limits, length: b.length })));
      expect(got.map((j) => new Uint8Array(j.bytes))).toEqual(sent);
    }
  });

  it('refuses a job announcing more bytes than its bound, from the head alone', () => {
    const [head] = jobFrame({ proc: 1, id: 1, limits }, bytesOf(1001, 0));
    expect(() => new JobReader(64 * 1024, 1000).push(head)).toThrow(FrameError);
    expect(() => new JobReader(64 * 1024, 1000).push(head)).toThrow(/a job of 1001 bytes was announced; at most 1000/);
  });

  it('refuses a head announcing more than its bound before a byte of it is kept', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffff_fff0);
    expect(() => new JobReader(1000, 1 << 20).push(header)).toThrow(
      /head of 4294967280 bytes was announced; at most 1000/,
    );
  });

  it('refuses a stream that ends inside a job, in its head or in its bytes', () => {
    const [head, body] = jobFrame({ proc: 1, id: 1, limits }, bytesOf(5000, 0));
    const inBytes = new JobReader(64 * 1024, 1 << 20);
    expect(inBytes.push(Buffer.concat([head, body.subarray(0, 4000)]))).toEqual([]);
    expect(() => inBytes.end()).toThrow(/ended inside a job's bytes: 4000 of the 5000/);
    const inHead = new JobReader(64 * 1024, 1 << 20);
    inHead.push(head.subarray(0, 6));
    expect(() => inHead.end()).toThrow(/ended inside a job's head/);
  });

  it('refuses a head that is not { proc, id, limits, length }', () => {
    for (const bad of [{ proc: 1, id: 1, length: 3 }, { proc: -1, id: 1, limits, length: 0 }, 'job', null]) {
      expect(() => new JobReader(64 * 1024, 1 << 20).push(headOnly(bad))).toThrow(
        /is not \{ proc, id, limits, length \}/,
      );
    }
  });
});
