// A systemd unit file read as systemd reads it (for the settings these tests check): sections of
// `Key=value` lines, a key given several times keeps every value in order, `#`/`;` lines are
// comments, an empty assignment resets the key.
import fs from 'node:fs';

export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (section === undefined || eq <= 0) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section.set(key, value === '' ? [] : [...(section.get(key) ?? []), value]);
  }
  return unit;
}

export function readUnit(file: string): Unit {
  return parseUnit(fs.readFileSync(file, 'utf8'));
}

/** Every value of `key` in `section` (empty when unset). */
export function values(unit: Unit, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The one value of `key`; throws when it is unset or set more than once. */
export function value(unit: Unit, section: string, key: string): string {
  const v = values(unit, section, key);
  if (v.length !== 1) throw new Error(`[${section}] ${key}: expected one value, found ${v.length}`);
  return v[0]!;
}
