// The one error body every capgate endpoint returns on 4xx/5xx.
import { Type, type Static } from '@sinclair/typebox';
import { ERROR_CODES } from '../error-codes.ts';
import { oneOf } from './common.ts';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: oneOf(ERROR_CODES),
      message: Type.String({ description: 'What went wrong, for a human.' }),
      hint: Type.Optional(Type.String({ description: 'What to do about it, when there is something to do.' })),
      kind: Type.Optional(
        Type.String({
          description:
            'Machine-readable detail, e.g. the compile error kind of a rejected policy, or which socket answered a 404.',
        }),
      ),
    }),
  },
  { description: 'The error body of every 4xx and 5xx answer.' },
);
export type ErrorBody = Static<typeof ErrorBody>;
