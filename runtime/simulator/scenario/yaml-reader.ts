// Typed reading of a parsed YAML document that remembers where every value came from, so a
// malformed scenario gets "line:col: what is wrong, what to write instead" for each problem.
import { isMap, isScalar, isSeq, type LineCounter, type Node, type YAMLMap } from 'yaml';
import type { SourcePosition } from './types.ts';

export interface ScenarioIssue extends SourcePosition {
  message: string;
}

export type Field = { key: string; keyNode: Node; value: Node | null };

export class YamlReader {
  readonly issues: ScenarioIssue[] = [];

  constructor(private readonly lines: LineCounter) {}

  positionOf(node: Node | null | undefined): SourcePosition {
    const offset = node?.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    return { line: pos.line, col: pos.col };
  }

  fail(node: Node | null | undefined, message: string): undefined {
    this.issues.push({ ...this.positionOf(node), message });
    return undefined;
  }

  /** The fields of a mapping; unknown keys are reported with the list of allowed ones. */
  fields(node: Node | null, what: string, allowed: readonly string[], parent?: Node): Map<string, Field> | undefined {
    if (!node || !isMap(node)) return this.fail(node ?? parent, `${what} must be a mapping (key: value lines)`);
    const out = new Map<string, Field>();
    for (const pair of (node as YAMLMap<unknown, unknown>).items) {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : '';
      if (!allowed.includes(key)) {
        this.fail(keyNode, `unknown key "${key}" in ${what}; allowed keys: ${allowed.join(', ')}`);
        continue;
      }
      if (out.has(key)) {
        this.fail(keyNode, `"${key}" appears twice in ${what}; keep one`);
        continue;
      }
      out.set(key, { key, keyNode, value: (pair.value as Node | null) ?? null });
    }
    return out;
  }

  /** A required field: reports its absence at the mapping that should hold it. */
  required(fields: Map<string, Field>, key: string, what: string, mapNode: Node | null): Field | undefined {
    const f = fields.get(key);
    if (!f) return this.fail(mapNode, `${what} needs "${key}"`);
    return f;
  }

  list(node: Node | null, what: string, at: Node): Node[] | undefined {
    if (!node || !isSeq(node)) return this.fail(node ?? at, `${what} must be a list (lines starting with "- ")`);
    return node.items as Node[];
  }

  string(f: Field, what: string): string | undefined {
    if (!f.value || !isScalar(f.value) || typeof f.value.value !== 'string') {
      return this.fail(f.value ?? f.keyNode, `${what} must be a string`);
    }
    return f.value.value;
  }

  /** A scalar written as text: numbers and booleans keep the spelling they had (labels). */
  text(node: Node | null, what: string, at: Node): string | undefined {
    if (!node || !isScalar(node) || node.value === null || typeof node.value === 'object') {
      return this.fail(node ?? at, `${what} must be a plain value (quote it if in doubt)`);
    }
    return node.source ?? String(node.value);
  }

  boolean(f: Field, what: string): boolean | undefined {
    if (!f.value || !isScalar(f.value) || typeof f.value.value !== 'boolean') {
      return this.fail(f.value ?? f.keyNode, `${what} must be true or false`);
    }
    return f.value.value;
  }

  integer(node: Node | null, what: string, at: Node, min: bigint, max: bigint): number | undefined {
    const v = node && isScalar(node) ? node.value : undefined;
    if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) {
      return this.fail(node ?? at, `${what} must be a whole number between ${min} and ${max}`);
    }
    const big = BigInt(v);
    if (big < min || big > max)
      return this.fail(node, `${what} is ${big}; it must be a whole number between ${min} and ${max}`);
    return Number(big);
  }

  scalarValue(node: Node | null): unknown {
    return node && isScalar(node) ? node.value : undefined;
  }

  oneOf<T extends string>(f: Field, what: string, choices: readonly T[]): T | undefined {
    const v = this.scalarValue(f.value);
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      return this.fail(f.value ?? f.keyNode, `${what} must be one of: ${choices.join(', ')}`);
    }
    return v as T;
  }
}
