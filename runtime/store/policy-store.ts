// Policies and their revisions. Every revision keeps its bytes, so any of them can be rebound
// (and recompiled at start) without the admin pushing it again.
import type Database from 'better-sqlite3';
import type { Operation } from '../contract/types.ts';
import type { EngineLimits } from '../engine/limits.ts';
import type { RevisionInfo, RevisionSummary } from '../wire/index.ts';

/** What the engine told us about a compiled revision; stored as JSON beside the bytes. */
export interface StoredPolicyInfo {
  imports: string[];
  exports: string[];
  hostFunctions: string[];
  wit: string;
  limits: EngineLimits;
}

/** A verified signature, stored with its revision (trust-roots.ts made it). */
export interface StoredSignature {
  keyId: string;
  signer: string;
  trustedComment: string;
  file: string;
}

export interface NewRevision {
  policy: string;
  description: string;
  bytes: Uint8Array;
  sha256: string;
  info: StoredPolicyInfo;
  /** Absent or null: unsigned. */
  signature?: StoredSignature | null;
}

interface RevisionRow {
  policy: string;
  revision: number;
  sha256: string;
  size: number;
  description: string;
  info: string;
  created_at: number;
  signature_file: string | null;
  key_id: string | null;
  signer: string | null;
  trusted_comment: string | null;
}

const COLUMNS =
  'policy, revision, sha256, size, description, info, created_at, signature_file, key_id, signer, trusted_comment';

export type DeleteRevisionResult = 'deleted' | 'not-found' | 'bound';

export class PolicyStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      getPolicy: db.prepare<[string], { next_revision: number }>('SELECT next_revision FROM policies WHERE name = ?'),
      insertPolicy: db.prepare('INSERT INTO policies (name, next_revision, created_at) VALUES (?, 1, ?)'),
      bumpRevision: db.prepare('UPDATE policies SET next_revision = next_revision + 1 WHERE name = ?'),
      insertRevision: db.prepare(
        'INSERT INTO policy_revisions (policy, revision, sha256, size, description, bytes, info, created_at, signature_file, key_id, signer, trusted_comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      latest: db.prepare<[string], RevisionRow>(
        `SELECT ${COLUMNS} FROM policy_revisions WHERE policy = ? ORDER BY revision DESC LIMIT 1`,
      ),
      get: db.prepare<[string, number], RevisionRow>(
        `SELECT ${COLUMNS} FROM policy_revisions WHERE policy = ? AND revision = ?`,
      ),
      bytes: db.prepare<[string, number], { bytes: Buffer }>(
        'SELECT bytes FROM policy_revisions WHERE policy = ? AND revision = ?',
      ),
      all: db.prepare<[], RevisionRow>(`SELECT ${COLUMNS} FROM policy_revisions ORDER BY policy, revision`),
      withSha: db.prepare<[string, string], RevisionRow>(
        `SELECT ${COLUMNS} FROM policy_revisions WHERE policy = ? AND sha256 = ? ORDER BY revision DESC`,
      ),
      boundOps: db.prepare<[], { operation: Operation; policy: string; revision: number }>(
        'SELECT operation, policy, revision FROM bindings',
      ),
      isBound: db.prepare<[string, number], { operation: string }>(
        'SELECT operation FROM bindings WHERE policy = ? AND revision = ?',
      ),
      delete: db.prepare('DELETE FROM policy_revisions WHERE policy = ? AND revision = ?'),
    };
  }

  /**
   * Stores a new revision (numbers are never reused, even after a delete). If the bytes equal
   * the latest revision of this policy, signed by the same key (or the new push is unsigned and
   * the latest is not), nothing is written and that revision is returned.
   */
  insert(rev: NewRevision, now = Date.now()): { revision: RevisionInfo; created: boolean } {
    return this.db
      .transaction(() => {
        const latest = this.stmts.latest.get(rev.policy);
        if (
          latest &&
          latest.sha256 === rev.sha256 &&
          ((rev.signature ?? null) === null || rev.signature?.keyId === latest.key_id)
        )
          return { revision: this.toInfo(latest), created: false };
        let policy = this.stmts.getPolicy.get(rev.policy);
        if (!policy) {
          this.stmts.insertPolicy.run(rev.policy, now);
          policy = { next_revision: 1 };
        }
        const revision = policy.next_revision;
        this.stmts.bumpRevision.run(rev.policy);
        const sig = rev.signature ?? null;
        this.stmts.insertRevision.run(
          rev.policy,
          revision,
          rev.sha256,
          rev.bytes.byteLength,
          rev.description,
          Buffer.from(rev.bytes),
          JSON.stringify(rev.info),
          now,
          sig?.file ?? null,
          sig?.keyId ?? null,
          sig?.signer ?? null,
          sig?.trustedComment ?? null,
        );
        return { revision: this.toInfo(this.stmts.get.get(rev.policy, revision)!), created: true };
      })
      .immediate();
  }

  get(policy: string, revision: number): RevisionInfo | null {
    const row = this.stmts.get.get(policy, revision);
    return row ? this.toInfo(row) : null;
  }

  latest(policy: string): RevisionInfo | null {
    const row = this.stmts.latest.get(policy);
    return row ? this.toInfo(row) : null;
  }

  /** The newest revision of `policy` with these bytes signed by `keyId` (null: unsigned), if any. */
  findSame(policy: string, sha256: string, keyId: string | null): RevisionInfo | null {
    const row = this.stmts.withSha.all(policy, sha256).find((r) => r.key_id === keyId);
    return row ? this.toInfo(row) : null;
  }

  /** The signature file a revision was stored with (null: unsigned or no such revision). */
  signatureFile(policy: string, revision: number): string | null {
    return this.stmts.get.get(policy, revision)?.signature_file ?? null;
  }

  bytes(policy: string, revision: number): Uint8Array | null {
    const row = this.stmts.bytes.get(policy, revision);
    return row ? new Uint8Array(row.bytes) : null;
  }

  /** All revisions, grouped by policy name (ascending revision). */
  list(): Map<string, RevisionSummary[]> {
    const bound = this.boundMap();
    const out = new Map<string, RevisionSummary[]>();
    for (const row of this.stmts.all.all()) {
      const list = out.get(row.policy) ?? [];
      list.push(this.toSummary(row, bound));
      out.set(row.policy, list);
    }
    return out;
  }

  delete(policy: string, revision: number): DeleteRevisionResult {
    return this.db
      .transaction((): DeleteRevisionResult => {
        if (!this.stmts.get.get(policy, revision)) return 'not-found';
        if (this.stmts.isBound.get(policy, revision)) return 'bound';
        this.stmts.delete.run(policy, revision);
        return 'deleted';
      })
      .immediate();
  }

  private boundMap(): Map<string, Operation[]> {
    const m = new Map<string, Operation[]>();
    for (const b of this.stmts.boundOps.all()) {
      const key = `${b.policy}\u0000${b.revision}`;
      m.set(key, [...(m.get(key) ?? []), b.operation]);
    }
    return m;
  }

  private toSummary(row: RevisionRow, bound = this.boundMap()): RevisionSummary {
    return {
      policy: row.policy,
      revision: row.revision,
      sha256: row.sha256,
      size: row.size,
      description: row.description,
      createdAt: new Date(row.created_at).toISOString(),
      boundTo: bound.get(`${row.policy}\u0000${row.revision}`) ?? [],
      signature:
        row.key_id !== null
          ? { keyId: row.key_id, signer: row.signer ?? '', trustedComment: row.trusted_comment ?? '' }
          : null,
    };
  }

  /** `trustedNow` is filled by the policy service, which knows the trust roots; false here. */
  private toInfo(row: RevisionRow): RevisionInfo {
    const info = JSON.parse(row.info) as StoredPolicyInfo;
    return {
      ...this.toSummary(row),
      imports: info.imports,
      exports: info.exports,
      hostFunctions: info.hostFunctions,
      wit: info.wit,
      limits: info.limits,
      signatureFile: row.signature_file,
      trustedNow: false,
    };
  }
}
