// The VM registry: identity + kernel-verifiable anchor, as registered by the management layer.
import type Database from 'better-sqlite3';
import type { RegisteredVm } from '../identity/vm.ts';
import type { VmRecord } from '../wire/index.ts';

interface VmRow {
  uuid: string;
  doc: string;
  registered_at: number;
  updated_at: number;
}

export type VmWriteResult =
  | { ok: true; vm: VmRecord }
  | { ok: false; reason: 'exists' | 'not-found' | 'name-taken'; message: string };

export class VmStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      all: db.prepare<[], VmRow>('SELECT uuid, doc, registered_at, updated_at FROM vms ORDER BY name, uuid'),
      get: db.prepare<[string], VmRow>('SELECT uuid, doc, registered_at, updated_at FROM vms WHERE uuid = ?'),
      byName: db.prepare<[string], { uuid: string }>('SELECT uuid FROM vms WHERE name = ?'),
      insert: db.prepare('INSERT INTO vms (uuid, name, doc, registered_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
      update: db.prepare('UPDATE vms SET name = ?, doc = ?, updated_at = ? WHERE uuid = ?'),
      delete: db.prepare('DELETE FROM vms WHERE uuid = ?'),
    };
  }

  list(): VmRecord[] {
    return this.stmts.all.all().map(toRecord);
  }

  get(uuid: string): VmRecord | null {
    const row = this.stmts.get.get(uuid);
    return row ? toRecord(row) : null;
  }

  register(vm: RegisteredVm, now = Date.now()): VmWriteResult {
    return this.db
      .transaction((): VmWriteResult => {
        const { uuid, name } = vm.identity;
        if (this.stmts.get.get(uuid))
          return { ok: false, reason: 'exists', message: `a VM with uuid ${uuid} is already registered` };
        if (this.stmts.byName.get(name))
          return { ok: false, reason: 'name-taken', message: `another VM is already registered as "${name}"` };
        this.stmts.insert.run(uuid, name, JSON.stringify(vm), now, now);
        return { ok: true, vm: toRecord(this.stmts.get.get(uuid)!) };
      })
      .immediate();
  }

  update(uuid: string, vm: RegisteredVm, now = Date.now()): VmWriteResult {
    return this.db
      .transaction((): VmWriteResult => {
        if (!this.stmts.get.get(uuid))
          return { ok: false, reason: 'not-found', message: `no VM with uuid ${uuid} is registered` };
        const other = this.stmts.byName.get(vm.identity.name);
        if (other && other.uuid !== uuid)
          return {
            ok: false,
            reason: 'name-taken',
            message: `another VM is already registered as "${vm.identity.name}"`,
          };
        this.stmts.update.run(vm.identity.name, JSON.stringify(vm), now, uuid);
        return { ok: true, vm: toRecord(this.stmts.get.get(uuid)!) };
      })
      .immediate();
  }

  unregister(uuid: string): boolean {
    return this.stmts.delete.run(uuid).changes > 0;
  }
}

function toRecord(row: VmRow): VmRecord {
  const vm = JSON.parse(row.doc) as RegisteredVm;
  return {
    identity: vm.identity,
    anchor: vm.anchor,
    registeredAt: new Date(row.registered_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}
