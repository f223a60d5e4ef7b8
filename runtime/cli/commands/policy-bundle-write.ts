// `capgate policy bundle`, the work itself: loaded only when the command runs, so that the
// other policy commands load neither the yaml package nor the policy directory's reader.
// The folder is checked the way the daemon reads it (bindings.yaml round-trips, sha256 pins,
// names), so what is shipped is what a node will accept, keys aside: signatures are the
// daemon's to verify.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import {
  BINDINGS_FILE,
  formatBindingsFile,
  parseBindingsFile,
  type DirectoryBinding,
} from '../../daemon/policy-directory/bindings-file.ts';
import { POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../../wire/index.ts';
import { usageError } from '../cli-error.ts';
import { withAdmin } from '../daemon-client.ts';
import { readPolicyFile } from '../local-simulator.ts';
import { createOutput } from '../output/output.ts';
import { readSignatureFile } from '../signature-file.ts';
import type { Operation } from '../../contract/types.ts';

/** What `capgate policy bundle` was given (its options are declared in policy-bundle.ts). */
export interface BundleOptions {
  out: string;
  socket: string;
  json: boolean;
  bind: Array<[Operation, string]>;
  configmap?: string;
  namespace: string;
  force: boolean;
}

/** etcd's limit on one object: a ConfigMap above it is refused by the API server. */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;
const CONFIGMAP_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

interface BundledPolicy {
  name: string;
  bytes: Uint8Array;
  signature?: string;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Local files: `name=path.wasm` or `path/name.wasm`, with `path.wasm.minisig` beside it when there is one. */
async function fromFiles(files: string[]): Promise<BundledPolicy[]> {
  const out: BundledPolicy[] = [];
  for (const arg of files) {
    const eq = arg.indexOf('=');
    const file = eq > 0 ? arg.slice(eq + 1) : arg;
    const name = eq > 0 ? arg.slice(0, eq) : path.basename(file).replace(/\.wasm$/, '');
    if (!POLICY_NAME_PATTERN.test(name))
      throw usageError(
        `"${name}" (from ${arg}) is not a policy name: ${POLICY_NAME_RULE}`,
        'rename the file, or name it explicitly: <name>=<file.wasm>',
      );
    if (out.some((p) => p.name === name))
      throw usageError(`two files are named ${name}`, 'name them apart: <name>=<file.wasm>');
    const bytes = await readPolicyFile(file);
    const sigFile = `${file}.minisig`;
    out.push({ name, bytes, ...(existsSync(sigFile) ? { signature: await readSignatureFile(sigFile) } : {}) });
  }
  return out;
}

/** What a daemon has bound now: each bound revision's bytes and signature. */
async function fromDaemon(socket: string): Promise<{ policies: BundledPolicy[]; bindings: DirectoryBinding[] }> {
  return withAdmin(socket, async (c) => {
    const { bindings } = await c.listBindings();
    if (bindings.length === 0)
      throw usageError(
        'the daemon has nothing bound, so there is nothing to bundle',
        'activate a revision first (`capgate policy activate <name>`), or bundle local files: `capgate policy bundle --out <dir> <file.wasm> --bind set-memlock=<name>`',
      );
    const policies: BundledPolicy[] = [];
    for (const b of bindings) {
      const have = policies.find((p) => p.name === b.policy);
      if (have) {
        if (sha256(have.bytes) !== b.sha256)
          throw usageError(
            `two revisions of ${b.policy} are bound; a policy directory holds one file per policy`,
            'bind one revision of it to every operation, then bundle again',
          );
        continue;
      }
      const info = await c.getRevision(b.policy, b.revision);
      const bytes = await c.getRevisionWasm(b.policy, b.revision);
      policies.push({
        name: b.policy,
        bytes,
        ...(info.signatureFile !== null ? { signature: info.signatureFile } : {}),
      });
    }
    return {
      policies,
      bindings: bindings.map((b) => ({ operation: b.operation, policy: b.policy, sha256: b.sha256 })),
    };
  });
}

function configMap(name: string, namespace: string, files: Map<string, Uint8Array | string>): string {
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  for (const [k, v] of files) {
    if (typeof v === 'string') data[k] = v;
    else binaryData[k] = Buffer.from(v).toString('base64');
  }
  const doc = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'capgate', 'app.kubernetes.io/component': 'policies' },
    },
    data,
    binaryData,
  };
  return `# capgate policy directory (docs/fleet.md): kubectl apply -f this file; every node picks it up within the kubelet's sync period\n${YAML.stringify(doc, { lineWidth: 0 })}`;
}

/** Writes the bundle `capgate policy bundle` was asked for. */
export async function writeBundle(files: string[], o: BundleOptions): Promise<void> {
  const out = createOutput(o.json);
  if (o.configmap !== undefined && !CONFIGMAP_NAME.test(o.configmap))
    throw usageError(
      `--configmap "${o.configmap}" is not a Kubernetes object name`,
      'use lowercase letters, digits, "-" and ".", e.g. capgate-policies',
    );
  let policies: BundledPolicy[];
  let bindings: DirectoryBinding[];
  if (files.length === 0) {
    if (o.bind.length > 0)
      throw usageError(
        '--bind goes with local files; a bundle from the daemon takes its bindings',
        'drop --bind, or list the .wasm files to bundle',
      );
    ({ policies, bindings } = await fromDaemon(o.socket));
  } else {
    policies = await fromFiles(files);
    bindings = o.bind.map(([operation, name]) => {
      const p = policies.find((x) => x.name === name);
      if (!p)
        throw usageError(
          `--bind ${operation}=${name}: no file named ${name} is bundled`,
          `bundled: ${policies.map((x) => x.name).join(', ')}`,
        );
      return { operation, policy: name, sha256: sha256(p.bytes) };
    });
    if (new Set(bindings.map((b) => b.operation)).size !== bindings.length)
      throw usageError('an operation is bound twice', 'give each operation one --bind');
    if (bindings.length === 0)
      out.note('no --bind: the bundle binds nothing, and a daemon reading it unbinds what its directory bound before');
  }
  const unsigned = policies.filter((p) => p.signature === undefined).map((p) => p.name);
  if (unsigned.length > 0)
    out.note(
      `unsigned: ${unsigned.join(', ')}; a daemon with policies.requireSignatures refuses the whole bundle (sign with \`minisign -Sm <file.wasm>\`)`,
    );

  const contents = new Map<string, Uint8Array | string>();
  for (const p of policies) {
    contents.set(`${p.name}.wasm`, p.bytes);
    if (p.signature !== undefined) contents.set(`${p.name}.wasm.minisig`, p.signature);
  }
  const bindingsText = formatBindingsFile(bindings);
  parseBindingsFile(bindingsText); // what the daemon will read back
  contents.set(BINDINGS_FILE, bindingsText);

  const dir = path.resolve(o.out);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const present = await readdir(dir);
  if (present.length > 0 && !o.force)
    throw usageError(
      `${dir} is not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''})`,
      'choose a new directory, or pass --force to write into it (other files there make the daemon refuse the directory)',
    );
  for (const [k, v] of contents) await writeFile(path.join(dir, k), v, { mode: 0o644 });

  let manifest: string | undefined;
  if (o.configmap !== undefined) {
    const text = configMap(o.configmap, o.namespace, contents);
    const size = Buffer.byteLength(text);
    if (size > CONFIGMAP_MAX_BYTES) {
      throw usageError(
        `the ConfigMap would be ${size} bytes, above the ${CONFIGMAP_MAX_BYTES} bytes Kubernetes stores in one object (the folder ${dir} is written)`,
        'ship the folder as an OCI image volume instead (docs/fleet.md), or bundle fewer policies',
      );
    }
    manifest = path.join(path.dirname(dir), `${o.configmap}.yaml`);
    await writeFile(manifest, text, { mode: 0o644 });
  }
  const summary = {
    directory: dir,
    files: [...contents.keys()],
    bindings,
    ...(manifest ? { configMap: manifest } : {}),
    signed: policies.filter((p) => p.signature !== undefined).map((p) => p.name),
    unsigned,
  };
  // Read back from disk, as the daemon will.
  const written = await readFile(path.join(dir, BINDINGS_FILE), 'utf8');
  if (written !== bindingsText) throw new Error(`${BINDINGS_FILE} did not read back as written`);
  out.result(summary, () =>
    [
      `wrote ${dir}: ${summary.files.join(', ')}`,
      ...bindings.map((b) => `  ${b.operation} -> ${b.policy} (sha256 ${b.sha256!.slice(0, 16)}…)`),
      ...(manifest ? [`wrote ${manifest}: kubectl apply -f ${manifest}`] : []),
    ].join('\n'),
  );
}
