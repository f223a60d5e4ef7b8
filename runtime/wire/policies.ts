// Policies, revisions and bindings: the rules of names and descriptions. The shapes are in
// schemas/policies.ts.

/** Policy names: what `?name=` accepts on push. */
export const POLICY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const POLICY_NAME_RULE =
  '1-63 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit';
export const MAX_DESCRIPTION_CHARS = 1024;

/** Why a revision may not run: no signature, one that does not verify, or a key not (or no longer) trusted. */
export const SIGNATURE_PROBLEMS = ['signature-missing', 'signature-invalid', 'signature-untrusted'] as const;

/** Largest .minisig text a push's `signature` query parameter carries: four short lines (minisign caps its comments at 1 KiB). */
export const MAX_SIGNATURE_FILE_BYTES = 4096;
