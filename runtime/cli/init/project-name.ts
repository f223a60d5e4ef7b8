// A project name valid for npm and for Cargo alike (lowercase letters, digits, '-', '_', starting
// with a letter), derived from what the user typed or the directory name.

export function projectName(raw: string): string {
  const cleaned = raw
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^[-_]+/, '');
  return /^[a-z]/.test(cleaned) ? cleaned : `policy-${cleaned}`.replace(/-+$/, '');
}
