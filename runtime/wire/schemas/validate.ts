// Compiled validators of the wire and config schemas, and error messages that name the path and,
// for a misspelt key, the nearest valid one ("engine.limits.deadlinMs: unknown key; did you mean
// deadlineMs?"). Checking is the compiled fast path; messages are built only when it fails.
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

export interface SchemaIssue {
  /** Dotted path of the offending value ("engine.limits.deadlineMs", "labels[0]"); "" for the root. */
  path: string;
  /** What is wrong and what would be right, without the path. */
  problem: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; issues: SchemaIssue[]; message: string };

export interface Validator<S extends TSchema> {
  readonly schema: S;
  /** The fast path: true when `value` matches. */
  check(value: unknown): value is Static<S>;
  /** check(), and on failure up to `max` issues with a message naming their paths. */
  validate(value: unknown, max?: number): Checked<Static<S>>;
}

export function compileValidator<S extends TSchema>(schema: S): Validator<S> {
  const compiled: TypeCheck<S> = TypeCompiler.Compile(schema);
  return {
    schema,
    check: (value): value is Static<S> => compiled.Check(value),
    validate(value, max = 3) {
      if (compiled.Check(value)) return { ok: true, value };
      const issues = describeErrors(compiled.Errors(value), max);
      return { ok: false, issues, message: issues.map(formatIssue).join('; ') };
    },
  };
}

export function formatIssue(issue: SchemaIssue): string {
  // A path is made of the sender's keys: bounded, so a hostile key does not fill the answer.
  const path = issue.path.length > 120 ? `${issue.path.slice(0, 117)}...` : issue.path;
  return path === '' ? issue.problem : `${path}: ${issue.problem}`;
}

/** JSON pointer (/engine/limits/0) to the dotted form people write in YAML (engine.limits[0]). */
export function dottedPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^[0-9]+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

function describeErrors(errors: Iterable<ValueError>, max: number): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // One issue per path: the first is the most specific TypeBox reports.
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    issues.push({ path: dottedPath(e.path), problem: problemOf(e) });
    if (issues.length >= max) break;
  }
  return issues.length > 0 ? issues : [{ path: '', problem: 'does not match the schema' }];
}

type SchemaNode = TSchema & {
  errorMessage?: string;
  properties?: Record<string, TSchema>;
  anyOf?: TSchema[];
  const?: unknown;
  type?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
};

function problemOf(e: ValueError): string {
  const s = e.schema as SchemaNode;
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const key = e.path.split('/').pop() ?? '';
      const known = Object.keys(s.properties ?? {});
      const near = nearestKey(key, known);
      return near !== undefined
        ? `unknown key; did you mean ${near}?`
        : `unknown key (known: ${known.join(', ') || 'none'})`;
    }
    case ValueErrorType.ObjectRequiredProperty:
      return `is missing; ${expectation(s)}`;
    default:
      return s.errorMessage ?? `${expectation(s)}, got ${shown(e.value)}`;
  }
}

/** What a value of schema `s` must be, in words. */
export function expectation(s: SchemaNode): string {
  if (s.errorMessage !== undefined) return s.errorMessage;
  const literals = s.anyOf?.every((a) => (a as SchemaNode).const !== undefined);
  if (literals && s.anyOf)
    return `must be one of ${s.anyOf.map((a) => JSON.stringify((a as SchemaNode).const)).join(', ')}`;
  if (s.const !== undefined) return `must be ${JSON.stringify(s.const)}`;
  if (s.anyOf)
    return `must be ${s.anyOf.map((a) => expectation(a as SchemaNode).replace(/^must be /, '')).join(', or ')}`;
  switch (s.type) {
    case 'integer':
    case 'number': {
      const what = s.type === 'integer' ? 'an integer' : 'a number';
      if (s.minimum !== undefined && s.maximum !== undefined)
        return `must be ${what} from ${s.minimum} to ${s.maximum}`;
      if (s.minimum !== undefined) return `must be ${what} >= ${s.minimum}`;
      if (s.maximum !== undefined) return `must be ${what} <= ${s.maximum}`;
      return `must be ${what}`;
    }
    case 'string':
      if (s.pattern !== undefined) return `must be a string matching ${s.pattern}`;
      if (s.minLength !== undefined && s.maxLength !== undefined)
        return `must be a string of ${s.minLength} to ${s.maxLength} characters`;
      if (s.minLength !== undefined) return `must be a string of at least ${s.minLength} characters`;
      if (s.maxLength !== undefined) return `must be a string of at most ${s.maxLength} characters`;
      return 'must be a string';
    case 'boolean':
      return 'must be true or false';
    case 'array':
      return s.maxItems !== undefined ? `must be a list of at most ${s.maxItems} items` : 'must be a list';
    case 'object':
      return 'must be an object (a mapping of keys to values)';
    default:
      return 'has the wrong type';
  }
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The known key closest to `key` by edit distance, if close enough to be a typo of it. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
