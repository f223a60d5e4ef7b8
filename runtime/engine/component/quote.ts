// Names taken from an uploaded component (import, export, field and case names) go into error
// messages; a name may be megabytes long, so it is quoted at most this long.
const MAX_QUOTED_CHARS = 80;

/** `"name"`, cut to MAX_QUOTED_CHARS characters with "..." when longer. */
export function quoteName(name: string): string {
  return name.length <= MAX_QUOTED_CHARS
    ? `"${name}"`
    : `"${name.slice(0, MAX_QUOTED_CHARS)}..." (${name.length} characters)`;
}
