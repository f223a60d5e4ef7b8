// A ConfigMap volume as the kubelet writes it (its AtomicWriter): the volume root (drwxrwxrwt,
// root), each generation in a directory `..<timestamp>` (0755, files 0644), published by
// renaming a fresh `..data_tmp` link over `..data`, one top-level link per key into `..data`,
// and the old generation removed afterwards.
import fs from 'node:fs';
import path from 'node:path';

let counter = 0;

export class KubeletVolume {
  private generation: string | null = null;

  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true });
    fs.chmodSync(root, 0o1777);
  }

  /** Publishes `files` as the next generation, atomically, as the kubelet does. Returns the generation's name. */
  publish(files: Record<string, Uint8Array | string>, o: { keepOld?: boolean; mode?: number } = {}): string {
    const name = `..2026_12_04_22_00_00.${String(++counter).padStart(9, '0')}`;
    const dir = path.join(this.root, name);
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o755);
    for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, k), v, { mode: o.mode ?? 0o644 });
    this.swap(name, Object.keys(files), o.keepOld);
    return name;
  }

  /** Points `..data` at `name` (which may not exist: a torn swap) and relinks the keys. */
  swap(name: string, keys: string[], keepOld = false): void {
    const tmp = path.join(this.root, '..data_tmp');
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(name, tmp);
    fs.renameSync(tmp, path.join(this.root, '..data'));
    for (const entry of fs.readdirSync(this.root))
      if (!entry.startsWith('..')) fs.rmSync(path.join(this.root, entry), { force: true });
    for (const k of keys) fs.symlinkSync(path.join('..data', k), path.join(this.root, k));
    const old = this.generation;
    this.generation = name;
    if (old !== null && old !== name && !keepOld)
      fs.rmSync(path.join(this.root, old), { recursive: true, force: true });
  }

  get current(): string | null {
    return this.generation;
  }
}
