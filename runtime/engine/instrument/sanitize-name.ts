// A guest-chosen function name made fit for an error detail. Its own file (no binaryen) because
// trap-site.ts needs it on every thread that evaluates, where binaryen would cost ~75 MB of RSS.
export const MAX_NAME_CHARS = 120;

/** Printable, one line, bounded: what a name may look like in an error detail. */
export function sanitizeName(raw: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return clean.length <= MAX_NAME_CHARS ? clean : `${clean.slice(0, MAX_NAME_CHARS - 1)}…`;
}
