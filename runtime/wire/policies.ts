// Policies, revisions and bindings as the admin API speaks them.
import type { Operation } from '../contract/types.ts';
import type { EngineLimits } from '../engine/limits.ts';

/** Policy names: what `?name=` accepts on push. */
export const POLICY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const POLICY_NAME_RULE = '1-63 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit';
export const MAX_DESCRIPTION_CHARS = 1024;

/** Why a revision may not run: no signature, one that does not verify, or a key not (or no longer) trusted. */
export type SignatureProblem = 'signature-missing' | 'signature-invalid' | 'signature-untrusted';

/** Who signed a revision, as verified when it was stored. */
export interface RevisionSignature {
  /** minisign key id: upper-case hex, as minisign prints it (a little-endian u64, no leading zeros). */
  keyId: string;
  /** The trust root's name when the revision was stored. */
  signer: string;
  /** minisign's trusted comment (covered by the signature). */
  trustedComment: string;
}

/** Where a binding comes from: the admin socket, or the policy directory (policies.directory). */
export type BindingSource = 'admin' | 'directory';

/**
 * Query of a policy push (POST /v1/policies, body application/wasm): `name`, optional
 * `description`, optional `signature` (the .minisig file's text, at most 4096 bytes).
 */
export interface PushPolicyQuery {
  name: string;
  description?: string;
  signature?: string;
}

export interface RevisionRef {
  policy: string;
  revision: number;
}

export interface RevisionSummary extends RevisionRef {
  sha256: string;
  size: number;
  description: string;
  /** ISO 8601. */
  createdAt: string;
  /** Operations this revision is currently bound to. */
  boundTo: Operation[];
  /** Null when the revision was stored without a signature. */
  signature: RevisionSignature | null;
}

/** Everything `inspect` shows about one revision. */
export interface RevisionInfo extends RevisionSummary {
  imports: string[];
  exports: string[];
  hostFunctions: string[];
  wit: string;
  /** The limits it was compiled with (the daemon's engine limits). */
  limits: EngineLimits;
  /** The .minisig file it was pushed with (null: unsigned). */
  signatureFile: string | null;
  /** Whether its signing key is among the daemon's trust roots now (false when unsigned). */
  trustedNow: boolean;
}

export interface PolicySummary {
  name: string;
  latestRevision: number;
  revisions: RevisionSummary[];
}

export interface ListPoliciesResponse {
  policies: PolicySummary[];
}

export interface PushPolicyResponse {
  revision: RevisionInfo;
  /** False when the identical bytes were already the latest revision of this policy. */
  created: boolean;
}

export interface Binding extends RevisionRef {
  operation: Operation;
  sha256: string;
  /** ISO 8601. */
  boundAt: string;
  source: BindingSource;
  /** The signing key of the bound revision (absent: unsigned). */
  keyId?: string;
  /**
   * Set when the bound revision may not run under the daemon's trust roots now (e.g. its key was
   * removed): its requests are denied with this reason until it is rebound or the key restored.
   */
  suspended?: { reason: SignatureProblem; message: string };
}

export interface BindRequest {
  policy: string;
  /** Omitted: the latest revision of `policy`. */
  revision?: number;
}

export interface BindingResponse {
  operation: Operation;
  /** Null when nothing is bound (requests are denied with `no-policy`). */
  binding: Binding | null;
  /** What was bound before this change. */
  previous?: Binding | null;
}

export interface ListBindingsResponse {
  bindings: Binding[];
}

export interface BindingHistoryEntry {
  id: number;
  operation: Operation;
  action: 'bind' | 'unbind';
  /** Null for unbind. */
  binding: Binding | null;
  /** ISO 8601. */
  at: string;
  /** Set when a rollback undid this entry. */
  rolledBackAt?: string;
}

export interface BindingHistoryResponse {
  history: BindingHistoryEntry[];
}

export interface DeleteRevisionResponse {
  deleted: RevisionRef;
}
