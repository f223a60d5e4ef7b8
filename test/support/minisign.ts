// Keys and signatures made by the real `minisign` tool, for tests of signed revisions.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface MinisignKey {
  /** The `RW…` public key line, as config policies.trustRoots takes it. */
  publicKey: string;
  /** minisign's key id (upper-case hex), as it prints it. */
  keyId: string;
  secretKeyFile: string;
  publicKeyFile: string;
}

/** An unencrypted key pair in `dir` (minisign -G -W). */
export function makeKey(dir: string, name: string): MinisignKey {
  const publicKeyFile = path.join(dir, `${name}.pub`);
  const secretKeyFile = path.join(dir, `${name}.key`);
  execFileSync('minisign', ['-G', '-W', '-p', publicKeyFile, '-s', secretKeyFile], { stdio: 'pipe' });
  const [comment, publicKey] = fs.readFileSync(publicKeyFile, 'utf8').trim().split('\n');
  return {
    publicKey: publicKey!,
    keyId: /public key ([0-9A-F]{1,16})$/.exec(comment!)![1]!,
    secretKeyFile,
    publicKeyFile,
  };
}

/** Signs `file` with minisign (prehashed by default, `legacy` for the "Ed" format); returns the .minisig text. */
export function sign(
  key: MinisignKey,
  file: string,
  o: { legacy?: boolean; trustedComment?: string; out?: string } = {},
): string {
  const out = o.out ?? `${file}.minisig`;
  const args = [
    '-S',
    '-s',
    key.secretKeyFile,
    '-m',
    file,
    '-x',
    out,
    ...(o.legacy ? ['-l'] : []),
    ...(o.trustedComment !== undefined ? ['-t', o.trustedComment] : []),
  ];
  execFileSync('minisign', args, { stdio: 'pipe' });
  return fs.readFileSync(out, 'utf8');
}

/** minisign's own verdict, to check that a tampered case is one minisign refuses too. */
export function minisignAccepts(key: MinisignKey, file: string, sigFile: string): boolean {
  try {
    execFileSync('minisign', ['-V', '-q', '-P', key.publicKey, '-m', file, '-x', sigFile], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}
