// docs/configuration.md and docs/config.schema.json, generated from the config schema: every key
// with its type, default and meaning. `npm run docs` writes them; a test fails when they drift.
import type { TSchema } from '@sinclair/typebox';
import { toJsonSchema } from '../wire/openapi.ts';
import { ConfigInputSchema, ConfigSchema } from './schema.ts';

interface Node {
  type?: string | string[];
  description?: string;
  default?: unknown;
  'x-default'?: string;
  properties?: Record<string, Node>;
  items?: Node;
  anyOf?: Node[];
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
}

/** The JSON Schema of a config file (every key optional), for editors and validators. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    ...toJsonSchema(ConfigInputSchema),
  };
}

export function configurationMarkdown(): string {
  const root = toJsonSchema(ConfigSchema as TSchema) as Node;
  const lines = [
    '<!-- Generated from runtime/config/schema.ts by `npm run docs`; test/daemon/config-docs.test.ts fails when it drifts. Edit the schema, not this file. -->',
    '',
    '# Configuration reference',
    '',
    'capgate reads its configuration from a YAML or JSON file (`capgate serve --config <file>`), with',
    '`--config-json <json>` merged over it key by key, and the flags (`--run-dir`, `--state-dir`,',
    '`--admin-socket`, `--request-socket`, `--workers`, `--log-level`) on top. Every key is optional.',
    "Unknown keys, wrong types and values out of range stop the daemon before it starts, with the key's",
    'path and, for a misspelt key, the one it probably meant. The file, and every directory above it,',
    "must be owned by root (or the daemon's uid) and writable by nobody else (SECURITY.md).",
    '',
    'Relative paths in a file are relative to the file. Editors can check a file against',
    '[config.schema.json](config.schema.json); [deploy/config.yaml](../deploy/config.yaml) is a commented example.',
    '',
  ];
  const topLevel = Object.entries(root.properties ?? {}).filter(([, n]) => n.properties === undefined);
  if (topLevel.length > 0) {
    lines.push('## Paths', '', ...table(topLevel.map(([k, n]) => [k, n])), '');
  }
  for (const [section, node] of Object.entries(root.properties ?? {})) {
    if (node.properties === undefined) continue;
    lines.push(...sectionLines(section, node, 2));
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function sectionLines(prefix: string, node: Node, depth: number): string[] {
  const out = [`${'#'.repeat(depth)} \`${prefix}\``, ''];
  if (node.description) out.push(node.description, '');
  const leaves = Object.entries(node.properties ?? {}).filter(([, n]) => n.properties === undefined);
  out.push(...table(leaves.map(([k, n]) => [`${prefix}.${k}`, n])), '');
  for (const [k, n] of Object.entries(node.properties ?? {})) {
    if (n.properties !== undefined) out.push(...sectionLines(`${prefix}.${k}`, n, depth + 1));
  }
  return out;
}

function table(rows: Array<[string, Node]>): string[] {
  return [
    '| Key | Type | Default | Meaning |',
    '| --- | --- | --- | --- |',
    ...rows.map(
      ([key, n]) => `| \`${key}\` | ${cell(typeOf(n))} | ${cell(defaultOf(n))} | ${cell(n.description ?? '')} |`,
    ),
  ];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function typeOf(n: Node): string {
  if (n.anyOf) {
    if (n.anyOf.every((a) => a.const !== undefined))
      return n.anyOf.map((a) => `\`${JSON.stringify(a.const)}\``).join(' or ');
    return n.anyOf.map(typeOf).join(' or ');
  }
  if (n.type === 'array') return `list of ${typeOf(n.items ?? {})}`;
  const base =
    n.type === 'integer'
      ? 'integer'
      : n.type === 'number'
        ? 'number'
        : n.type === 'string'
          ? 'string'
          : String(n.type ?? 'any');
  const range = rangeOf(n);
  return range ? `${base} ${range}` : base;
}

function rangeOf(n: Node): string {
  const max = n.maximum === Number.MAX_SAFE_INTEGER ? undefined : n.maximum;
  if (n.exclusiveMinimum !== undefined)
    return max !== undefined ? `> ${n.exclusiveMinimum}, ≤ ${max}` : `> ${n.exclusiveMinimum}`;
  if (n.minimum !== undefined && max !== undefined) return `${n.minimum}–${max}`;
  if (n.minimum !== undefined) return `≥ ${n.minimum}`;
  return '';
}

function defaultOf(n: Node): string {
  if (n['x-default'] !== undefined) return n['x-default'];
  if (n.default === undefined) return '';
  return `\`${JSON.stringify(n.default)}\``;
}
