// Reading a .minisig file for `capgate policy push --signature` and `capgate policy bundle`:
// parsed here, so that a wrong file (a public key, a signify signature, a truncated copy) is
// named before anything is uploaded. Whether the key is trusted is the daemon's to say.
import { readFile } from 'node:fs/promises';
import { MAX_SIGNATURE_FILE_BYTES, MinisignFormatError, parseSignature } from '../signing/minisign.ts';
import { usageError } from './cli-error.ts';

export async function readSignatureFile(file: string): Promise<string> {
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_SIGNATURE_FILE_BYTES)
      throw usageError(
        `${file} is ${bytes.length} bytes: not a minisign signature (at most ${MAX_SIGNATURE_FILE_BYTES})`,
        'pass the .minisig file `minisign -Sm <file.wasm>` wrote',
      );
    text = bytes.toString('utf8');
  } catch (e) {
    if (!(e instanceof Error) || !('code' in e)) throw e;
    throw usageError(
      `cannot read the signature ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
      'sign the policy first: `minisign -Sm <file.wasm>` writes <file.wasm>.minisig',
    );
  }
  try {
    parseSignature(text);
  } catch (e) {
    if (e instanceof MinisignFormatError)
      throw usageError(
        `${file} is not a minisign signature: ${e.message}`,
        'pass the .minisig file `minisign -Sm <file.wasm>` wrote, unchanged',
      );
    throw e;
  }
  return text;
}
