// Policies, revisions and bindings as the admin API speaks them.
import type { Operation } from '../contract/types.ts';
import type { EngineLimits } from '../engine/limits.ts';

/** Policy names: what `?name=` accepts on push. */
export const POLICY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const POLICY_NAME_RULE = '1-63 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit';
export const MAX_DESCRIPTION_CHARS = 1024;

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
}

/** Everything `inspect` shows about one revision. */
export interface RevisionInfo extends RevisionSummary {
  imports: string[];
  exports: string[];
  hostFunctions: string[];
  wit: string;
  /** The limits it was compiled with (the daemon's engine limits). */
  limits: EngineLimits;
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
