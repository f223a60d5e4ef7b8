// docs/configuration.md and docs/config.schema.json are generated from the config schema; they
// are committed as `npm run docs` writes them, cover every key, and the JSON Schema accepts the
// shipped configs and refuses what the daemon refuses.
import fs from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../runtime/config/schema.ts';
import { generatedDocs } from '../../scripts/generate-docs.ts';
import { REPO_ROOT } from './helpers/daemon-process.ts';

const read = (file: string): string => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** Every leaf key of the schema, dotted: engine.limits.deadlineMs, runDir, ... */
function leafKeys(schema: { properties?: Record<string, unknown> }, prefix = ''): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    const sub = v as { properties?: Record<string, unknown> };
    return sub.properties ? leafKeys(sub, key) : [key];
  });
}

describe('generated configuration docs', () => {
  it('are committed exactly as `npm run docs` writes them', () => {
    const docs = generatedDocs();
    expect(read('docs/configuration.md')).toBe(docs['docs/configuration.md']);
    expect(read('docs/config.schema.json')).toBe(docs['docs/config.schema.json']);
  });

  it('list every key of the schema with its type, default and meaning', () => {
    const md = read('docs/configuration.md');
    const keys = leafKeys(ConfigSchema);
    expect(keys).toContain('engine.limits.deadlineMs');
    for (const key of keys) {
      const row = md.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row, key).toBeDefined();
      const [, , type, def, meaning] = row!.split(/(?<!\\)\|/).map((c) => c.trim());
      expect(type, `${key} type`).not.toBe('');
      expect(meaning, `${key} meaning`).not.toBe('');
      // Optional keys with no default say so in words; every other key shows its default.
      expect(def, `${key} default`).not.toBe('');
    }
  });

  it('the JSON Schema accepts the shipped configs and refuses a typo and a deadline of 0', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(JSON.parse(read('docs/config.schema.json')) as object);
    const manifests = YAML.parseAllDocuments(read('deploy/kubernetes/capgate.yaml')).map(
      (d) => d.toJS() as { kind?: string; data?: Record<string, string> },
    );
    const configMap = manifests.find((m) => m.kind === 'ConfigMap');
    expect(configMap?.data?.['config.yaml']).toContain('runDir');
    for (const [name, text] of [
      ['deploy/config.yaml', read('deploy/config.yaml')],
      ['the ConfigMap', configMap?.data?.['config.yaml'] ?? ''],
    ] as const) {
      expect(validate(YAML.parse(text) ?? {}), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    expect(validate({ engine: { limits: { deadlinMs: 5 } } })).toBe(false);
    expect(validate({ engine: { limits: { deadlineMs: 0 } } })).toBe(false);
    expect(validate({ request: { socketGroup: 'kvm', deadlineMs: 500 } })).toBe(true);
  });
});
