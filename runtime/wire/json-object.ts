// The one check that a parsed JSON (or YAML) value is an object, { ... }: not null, not an array.
// Everything that reads a document, a frame or a body it did not build itself starts there.

/** An object with keys, as JSON and YAML mean it: not null, not an array. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `text` parsed when it is the JSON of an object; null when it is not JSON, or not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return isJsonObject(value) ? value : null;
}
