// bindings.yaml of a policy directory: which policy each operation runs, optionally pinned to
// the sha256 of its bytes (so a ConfigMap that shipped the wrong file is refused, not run).
//
//   bindings:
//     set-memlock:
//       policy: memlock-cap
//       sha256: 6f1c…        # optional
//
// `bindings: {}` binds nothing: operations the directory bound before are unbound.
import YAML from 'yaml';
import { OPERATIONS, type Operation } from '../../contract/types.ts';
import { isJsonObject, POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../../wire/index.ts';

export const BINDINGS_FILE = 'bindings.yaml';

export interface DirectoryBinding {
  operation: Operation;
  policy: string;
  sha256?: string;
}

export class BindingsFileError extends Error {
  override readonly name = 'BindingsFileError';
}

const EXAMPLE =
  'for example:\n  bindings:\n    set-memlock:\n      policy: memlock-cap\n      sha256: <sha256 of memlock-cap.wasm, optional>';

export function parseBindingsFile(text: string): DirectoryBinding[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { maxAliasCount: 0 });
  } catch (err) {
    throw new BindingsFileError(`${BINDINGS_FILE} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isJsonObject(doc))
    throw new BindingsFileError(`${BINDINGS_FILE} must be a mapping with the key "bindings", ${EXAMPLE}`);
  const extra = Object.keys(doc).filter((k) => k !== 'bindings');
  if (extra.length > 0)
    throw new BindingsFileError(
      `${BINDINGS_FILE}: unknown key "${extra[0]!.slice(0, 40)}" (known: bindings), ${EXAMPLE}`,
    );
  const bindings = doc.bindings;
  if (bindings === null || bindings === undefined) return [];
  if (!isJsonObject(bindings))
    throw new BindingsFileError(`${BINDINGS_FILE}: "bindings" must map operations to policies, ${EXAMPLE}`);
  return Object.entries(bindings).map(([op, value]) => {
    if (!(OPERATIONS as readonly string[]).includes(op))
      throw new BindingsFileError(
        `${BINDINGS_FILE}: unknown operation "${op.slice(0, 40)}" (operations: ${OPERATIONS.join(', ')})`,
      );
    const where = `${BINDINGS_FILE}: bindings.${op}`;
    if (!isJsonObject(value))
      throw new BindingsFileError(`${where} must be a mapping with "policy" and, optionally, "sha256"`);
    const unknown = Object.keys(value).filter((k) => k !== 'policy' && k !== 'sha256');
    if (unknown.length > 0)
      throw new BindingsFileError(`${where}: unknown key "${unknown[0]!.slice(0, 40)}" (known: policy, sha256)`);
    const { policy, sha256 } = value;
    if (typeof policy !== 'string' || !POLICY_NAME_PATTERN.test(policy))
      throw new BindingsFileError(
        `${where}.policy must be a policy name (${POLICY_NAME_RULE}), the name of <name>.wasm in the directory`,
      );
    if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)))
      throw new BindingsFileError(`${where}.sha256 must be 64 lower-case hex digits (\`sha256sum ${policy}.wasm\`)`);
    return { operation: op as Operation, policy, ...(sha256 !== undefined ? { sha256 } : {}) };
  });
}

/** The file `capgate policy bundle` writes. */
export function formatBindingsFile(bindings: readonly DirectoryBinding[]): string {
  const doc = {
    bindings: Object.fromEntries(
      bindings.map((b) => [b.operation, { policy: b.policy, ...(b.sha256 !== undefined ? { sha256: b.sha256 } : {}) }]),
    ),
  };
  return `# capgate policy directory: which policy each operation runs (docs/fleet.md)\n${YAML.stringify(doc)}`;
}
