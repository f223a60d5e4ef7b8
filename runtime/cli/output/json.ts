// JSON for scripts: bigints (u64 byte counts) as decimal strings, never lossy numbers.
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
