// Building blocks shared by the wire schemas: string enums, timestamps, contract types.
import { Type, type TLiteral, type TUnion } from '@sinclair/typebox';
import {
  CAPABILITY_ERRORS,
  LOG_LEVELS,
  OPERATIONS,
  type VmIdentity as ContractVmIdentity,
} from '../../contract/types.ts';

/** A string enum from a constant list, so the list stays the one source of its values. */
export function oneOf<T extends string>(
  values: readonly T[],
  options: { description?: string } = {},
): TUnion<Array<TLiteral<T>>> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  );
}

export const IsoTime = (description = 'ISO 8601 with milliseconds.') =>
  Type.String({ description, format: 'date-time' });

export const Operation = oneOf(OPERATIONS, { description: 'A privileged operation a policy decides.' });
export const CapabilityError = oneOf(CAPABILITY_ERRORS);
export const LogLevel = oneOf(LOG_LEVELS);

export const Sha256 = Type.String({
  pattern: '^[0-9a-f]{64}$',
  description: 'Lowercase hex SHA-256 of the component bytes.',
});

/** u64 byte count on the wire: a decimal string, or "unlimited". */
export const WireBytes = Type.String({
  pattern: '^([0-9]{1,20}|unlimited)$',
  description: 'Wire form of a u64 byte count: a decimal string or "unlimited".',
});

export const VmIdentity = Type.Object(
  {
    uuid: Type.String({ description: 'RFC 4122 uuid, lowercase.' }),
    name: Type.String({ minLength: 1, maxLength: 253 }),
    id: Type.Integer({ minimum: -0x8000_0000, maximum: 0x7fff_ffff, description: 'Signed 32-bit VM id.' }),
    labels: Type.Array(Type.Tuple([Type.String(), Type.String()]), {
      maxItems: 64,
      description: '[key, value] pairs.',
    }),
  },
  { additionalProperties: false },
);

// The contract's VmIdentity (the WIT mirror) and this schema must describe the same shape.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const vmIdentityMatchesContract: Same<import('@sinclair/typebox').Static<typeof VmIdentity>, ContractVmIdentity> = true;
void vmIdentityMatchesContract;
