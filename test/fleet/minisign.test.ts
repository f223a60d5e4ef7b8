// minisign's formats as capgate reads them, against keys and signatures made by the real tool,
// and hostile variations of each: every one refused with a message that says what is wrong.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MinisignFormatError,
  parsePublicKey,
  parseSignature,
  verifySignature,
} from '../../runtime/signing/minisign.ts';
import { TrustRootError, TrustRoots } from '../../runtime/signing/trust-roots.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { makeKey, sign, type MinisignKey } from '../support/minisign.ts';

let dir: string;
let key: MinisignKey;
let other: MinisignKey;
let file: string;
const bytes = crypto.randomBytes(100_000);

beforeAll(() => {
  dir = tempDir('capgate-minisign-');
  key = makeKey(dir, 'a');
  other = makeKey(dir, 'b');
  file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, bytes);
});
afterAll(removeTempDirs);

describe('minisign keys and signatures', () => {
  it('reads the key id as minisign prints it, from the key line or the whole .pub file', () => {
    expect(parsePublicKey(key.publicKey).keyId).toBe(key.keyId);
    expect(parsePublicKey(fs.readFileSync(key.publicKeyFile, 'utf8')).keyId).toBe(key.keyId);
  });

  it('verifies both formats and the trusted comment, and refuses any changed byte', () => {
    for (const legacy of [false, true]) {
      const text = sign(key, file, {
        legacy,
        trustedComment: 'v1 by alice',
        out: path.join(dir, `s-${legacy}.minisig`),
      });
      const sig = parseSignature(text);
      expect(sig).toMatchObject({ algorithm: legacy ? 'Ed' : 'ED', keyId: key.keyId, trustedComment: 'v1 by alice' });
      const pk = parsePublicKey(key.publicKey);
      expect(verifySignature(bytes, sig, pk)).toEqual({ ok: true });
      const changed = Buffer.from(bytes);
      changed[12345] = changed[12345]! ^ 0x80;
      expect(verifySignature(changed, sig, pk)).toMatchObject({ ok: false, problem: 'bad-signature' });
      expect(verifySignature(bytes, { ...sig, trustedComment: 'v1 by mallory' }, pk)).toMatchObject({
        ok: false,
        problem: 'bad-trusted-comment',
      });
      // A signature claiming the other algorithm does not verify either way.
      expect(verifySignature(bytes, { ...sig, algorithm: legacy ? 'ED' : 'Ed' }, pk)).toMatchObject({
        ok: false,
        problem: 'bad-signature',
      });
      expect(verifySignature(bytes, sig, parsePublicKey(other.publicKey))).toMatchObject({
        ok: false,
        problem: 'wrong-key',
      });
    }
  });

  it('refuses a key id that was rewritten to claim a trusted key: the signature itself does not verify', () => {
    const text = sign(other, file, { out: path.join(dir, 'other.minisig') });
    const lines = text.split('\n');
    const raw = Buffer.from(lines[1]!, 'base64');
    raw.writeBigUInt64LE(BigInt(`0x${parsePublicKey(key.publicKey).keyId}`), 2);
    lines[1] = raw.toString('base64');
    const roots = new TrustRoots([{ name: 'a', publicKey: key.publicKey }], true);
    expect(roots.check(bytes, lines.join('\n'))).toMatchObject({ ok: false, problem: 'signature-invalid' });
  });

  it('refuses malformed files and keys, each with what is wrong', () => {
    const good = sign(key, file, { out: path.join(dir, 'good.minisig') }).split('\n');
    const signify = path.join(dir, 'signify');
    execFileSync('signify-openbsd', ['-G', '-n', '-p', `${signify}.pub`, '-s', `${signify}.sec`]);
    execFileSync('signify-openbsd', ['-S', '-s', `${signify}.sec`, '-m', file, '-x', `${signify}.sig`]);
    const cases: Array<[string, RegExp]> = [
      ['', /has 4 lines/],
      [fs.readFileSync(`${signify}.sig`, 'utf8'), /signify signature\?/],
      [[`x${good[0]}`, ...good.slice(1)].join('\n'), /must start with "untrusted comment:"/],
      [[good[0], good[1]!.slice(4), ...good.slice(2)].join('\n'), /decodes to|not base64/],
      [
        [good[0], good[1], good[2]!.replace('trusted comment: ', 'comment: '), good[3]].join('\n'),
        /must start with "trusted comment: "/,
      ],
      [[good[0], good[1], good[2], 'AAAA'].join('\n'), /global signature .* decodes to 3 bytes/],
      [
        [
          good[0],
          Buffer.concat([Buffer.from('XX'), Buffer.from(good[1]!, 'base64').subarray(2)]).toString('base64'),
          good[2],
          good[3],
        ].join('\n'),
        /algorithm is "XX"/,
      ],
      [`${good.join('\n')}${'x'.repeat(5000)}`, /longer than 4096 bytes/],
    ];
    for (const [text, message] of cases) expect(() => parseSignature(text), text.slice(0, 40)).toThrow(message);
    expect(() => parsePublicKey('RWQ')).toThrow(MinisignFormatError);
    expect(() => parsePublicKey(fs.readFileSync(`${signify}.pub`, 'utf8').split('\n')[1]!)).not.toThrow(); // signify keys are the same format
    expect(() => parsePublicKey(`${key.publicKey}\n${key.publicKey}\n${key.publicKey}`)).toThrow(/one base64 line/);
  });

  it('trust roots refuse a bad key and a key listed twice, naming the entry', () => {
    expect(() => new TrustRoots([{ name: 'ops', publicKey: 'nope' }], true)).toThrow(TrustRootError);
    expect(() => new TrustRoots([{ name: 'ops', publicKey: 'nope' }], true)).toThrow(
      /policies\.trustRoots\[0\] \(ops\)/,
    );
    expect(
      () =>
        new TrustRoots(
          [
            { name: 'a', publicKey: key.publicKey },
            { name: 'b', publicKey: key.publicKey },
          ],
          true,
        ),
    ).toThrow(/same key id .* as a/);
  });
});
