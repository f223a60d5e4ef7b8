// Policies, revisions and bindings as the admin API speaks them.
import { Type, type Static } from '@sinclair/typebox';
import {
  MAX_DESCRIPTION_CHARS,
  MAX_SIGNATURE_FILE_BYTES,
  POLICY_NAME_PATTERN,
  POLICY_NAME_RULE,
  SIGNATURE_PROBLEMS,
} from '../policies.ts';
import { IsoTime, oneOf, Operation, Sha256 } from './common.ts';
import { EngineLimits } from './limits.ts';

export const PolicyName = Type.String({
  pattern: POLICY_NAME_PATTERN.source,
  description: `Policy name: ${POLICY_NAME_RULE}.`,
  errorMessage: `must be a policy name: ${POLICY_NAME_RULE}`,
});
export const RevisionNumber = Type.Integer({ minimum: 1, description: 'Revision of a policy, from 1.' });

const revisionRef = { policy: Type.String(), revision: RevisionNumber };
export const RevisionRef = Type.Object(revisionRef);
export type RevisionRef = Static<typeof RevisionRef>;

export const SignatureProblem = oneOf(SIGNATURE_PROBLEMS, {
  description:
    'Why a revision may not run: no signature, one that does not verify, or a key not (or no longer) trusted.',
});
export type SignatureProblem = Static<typeof SignatureProblem>;

export const RevisionSignature = Type.Object(
  {
    keyId: Type.String({
      pattern: '^[0-9A-F]{1,16}$',
      description: 'minisign key id: upper-case hex, as minisign prints it (a little-endian u64, no leading zeros).',
    }),
    signer: Type.String({ description: "The trust root's name when the revision was stored." }),
    trustedComment: Type.String({ description: "minisign's trusted comment (covered by the signature)." }),
  },
  { description: 'Who signed a revision, as verified when it was stored.' },
);
export type RevisionSignature = Static<typeof RevisionSignature>;

export const BindingSource = Type.Union([Type.Literal('admin'), Type.Literal('directory')], {
  description: 'Where a binding comes from: the admin socket, or the policy directory (policies.directory).',
});
export type BindingSource = Static<typeof BindingSource>;

const revisionSummary = {
  ...revisionRef,
  sha256: Sha256,
  size: Type.Integer({ minimum: 0, description: 'Component size in bytes.' }),
  description: Type.String({ maxLength: MAX_DESCRIPTION_CHARS }),
  createdAt: IsoTime('ISO 8601.'),
  boundTo: Type.Array(Operation, { description: 'Operations this revision is currently bound to.' }),
  signature: Type.Union([RevisionSignature, Type.Null()], {
    description: 'Null when the revision was stored without a signature.',
  }),
};
export const RevisionSummary = Type.Object(revisionSummary);
export type RevisionSummary = Static<typeof RevisionSummary>;

export const RevisionInfo = Type.Object(
  {
    ...revisionSummary,
    imports: Type.Array(Type.String()),
    exports: Type.Array(Type.String()),
    hostFunctions: Type.Array(Type.String()),
    wit: Type.String(),
    limits: EngineLimits,
    signatureFile: Type.Union([Type.String(), Type.Null()], {
      description: 'The .minisig file it was pushed with (null: unsigned).',
    }),
    trustedNow: Type.Boolean({
      description:
        "Whether its signing key is among the daemon's trust roots now, and its signature still verifies (false when unsigned).",
    }),
  },
  { description: 'Everything `policy inspect` shows about one revision; limits are those it was compiled with.' },
);
export type RevisionInfo = Static<typeof RevisionInfo>;

export const PolicySummary = Type.Object({
  name: Type.String(),
  latestRevision: Type.Integer({ minimum: 0 }),
  revisions: Type.Array(RevisionSummary),
});
export type PolicySummary = Static<typeof PolicySummary>;

export const ListPoliciesResponse = Type.Object({ policies: Type.Array(PolicySummary) });
export type ListPoliciesResponse = Static<typeof ListPoliciesResponse>;

export const PushPolicyQuery = Type.Object(
  {
    name: PolicyName,
    description: Type.Optional(
      Type.String({ maxLength: MAX_DESCRIPTION_CHARS, description: 'Free text shown by `policy ls`.' }),
    ),
    signature: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_SIGNATURE_FILE_BYTES,
        description: `The .minisig file's text (at most ${MAX_SIGNATURE_FILE_BYTES} bytes): checked against policies.trustRoots before anything is compiled.`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type PushPolicyQuery = Static<typeof PushPolicyQuery>;

export const PushPolicyResponse = Type.Object({
  revision: RevisionInfo,
  created: Type.Boolean({
    description: 'False when the identical bytes were already the latest revision of this policy.',
  }),
});
export type PushPolicyResponse = Static<typeof PushPolicyResponse>;

export const Binding = Type.Object({
  ...revisionRef,
  operation: Operation,
  sha256: Sha256,
  boundAt: IsoTime('ISO 8601.'),
  source: BindingSource,
  keyId: Type.Optional(Type.String({ description: 'The signing key of the bound revision (absent: unsigned).' })),
  suspended: Type.Optional(
    Type.Object(
      { reason: SignatureProblem, message: Type.String() },
      {
        description:
          "Set when the bound revision may not run under the daemon's trust roots now (e.g. its key was removed): its requests are denied with this reason until it is rebound or the key restored.",
      },
    ),
  ),
});
export type Binding = Static<typeof Binding>;

export const BindRequest = Type.Object(
  {
    policy: Type.String({ description: 'Policy name.' }),
    revision: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Omitted: the latest revision of `policy`.',
        errorMessage: 'must be a positive integer; omit it to bind the latest revision',
      }),
    ),
  },
  { additionalProperties: false },
);
export type BindRequest = Static<typeof BindRequest>;

export const BindingResponse = Type.Object({
  operation: Operation,
  binding: Type.Union([Binding, Type.Null()], {
    description: 'Null when nothing is bound (requests are denied with `no-policy`).',
  }),
  previous: Type.Optional(Type.Union([Binding, Type.Null()], { description: 'What was bound before this change.' })),
});
export type BindingResponse = Static<typeof BindingResponse>;

export const ListBindingsResponse = Type.Object({ bindings: Type.Array(Binding) });
export type ListBindingsResponse = Static<typeof ListBindingsResponse>;

export const BindingHistoryEntry = Type.Object({
  id: Type.Integer(),
  operation: Operation,
  action: Type.Union([Type.Literal('bind'), Type.Literal('unbind')]),
  binding: Type.Union([Binding, Type.Null()], { description: 'Null for unbind.' }),
  at: IsoTime('ISO 8601.'),
  rolledBackAt: Type.Optional(IsoTime('Set when a rollback undid this entry.')),
});
export type BindingHistoryEntry = Static<typeof BindingHistoryEntry>;

export const BindingHistoryResponse = Type.Object({ history: Type.Array(BindingHistoryEntry) });
export type BindingHistoryResponse = Static<typeof BindingHistoryResponse>;

export const DeleteRevisionResponse = Type.Object({ deleted: RevisionRef });
export type DeleteRevisionResponse = Static<typeof DeleteRevisionResponse>;
