// The request channel: what an unprivileged client sends and what it gets back.
import { Type, type Static } from '@sinclair/typebox';
import { DECISION_ERROR_KINDS } from '../error-kinds.ts';
import { parseBytes, type ParseResult } from '../operations.ts';
import { oneOf } from './common.ts';
import { compileValidator } from './validate.ts';

/**
 * Body of POST /v1/operations/set-memlock. Only the target and the amount: who is asking
 * (pid, uid, VM) comes from the kernel, never from the body.
 */
export const SetMemlockBody = Type.Object(
  {
    targetPid: Type.Integer({
      minimum: 1,
      maximum: 0xffff_ffff,
      description: 'The process whose RLIMIT_MEMLOCK to set.',
      errorMessage: 'must be a positive integer pid',
    }),
    bytes: Type.Union(
      [
        Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
        Type.String({ pattern: '^([0-9]{1,20}|unlimited)$' }),
      ],
      {
        description: 'The new limit: a JSON integer (<= 2^53-1), a decimal u64 string, or "unlimited".',
        errorMessage: 'must be a non-negative integer, a decimal string such as "17179869184", or "unlimited"',
      },
    ),
  },
  { additionalProperties: false },
);
export type SetMemlockBody = Static<typeof SetMemlockBody>;

export const DecisionErrorKindSchema = oneOf(DECISION_ERROR_KINDS, {
  description: 'Why a deny happened when no policy reason applies: an engine failure or a daemon deny.',
});

export const DecisionResponse = Type.Object({
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  reason: Type.String({ description: "The policy's deny reason, or the failure's kind; empty for allow." }),
  decisionId: Type.String({ description: 'Key of the audit record of this decision.' }),
  errorKind: Type.Optional(DecisionErrorKindSchema),
});
export type DecisionResponse = Static<typeof DecisionResponse>;

const setMemlockBody = compileValidator(SetMemlockBody);
const SET_MEMLOCK_HINT =
  'send {"targetPid": <pid>, "bytes": <bytes>}; who is asking comes from the socket, not the body';

/** Validates a parsed JSON body of set-memlock: the schema, then the u64 range of `bytes`. */
export function parseSetMemlockBody(body: unknown): ParseResult<{ targetPid: number; bytes: bigint }> {
  if (!setMemlockBody.check(body)) {
    const r = setMemlockBody.validate(body);
    return { ok: false, message: r.ok ? 'the body does not match the schema' : r.message, hint: SET_MEMLOCK_HINT };
  }
  const bytes = parseBytes(body.bytes);
  return bytes.ok ? { ok: true, value: { targetPid: body.targetPid, bytes: bytes.value } } : bytes;
}
