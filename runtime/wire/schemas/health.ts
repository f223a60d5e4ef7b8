// Health of the daemon, as both sockets report it.
import { Type, type Static } from '@sinclair/typebox';
import { Operation } from './common.ts';
import { Binding, SignatureProblem } from './policies.ts';

export const HealthProblem = Type.Union(
  [
    Type.Object({
      kind: Type.Literal('binding-suspended'),
      operation: Operation,
      policy: Type.String(),
      revision: Type.Integer({ minimum: 1 }),
      reason: SignatureProblem,
      message: Type.String(),
    }),
    Type.Object({
      kind: Type.Literal('policy-directory'),
      directory: Type.String(),
      message: Type.String(),
      since: Type.String({ format: 'date-time', description: 'ISO 8601.' }),
    }),
  ],
  {
    description:
      'Something that keeps the daemon from doing all it was asked to: a binding suspended because its revision may not run, or a policy directory whose latest contents were refused.',
  },
);
export type HealthProblem = Static<typeof HealthProblem>;

export const PolicyDirectoryStatus = Type.Object(
  {
    directory: Type.String(),
    appliedFrom: Type.Union([Type.String(), Type.Null()], {
      description:
        'The data directory the last applied contents came from (the target of `..data`, or the directory itself).',
    }),
    appliedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'ISO 8601 of the last successful reconcile.',
    }),
    bindingsSha256: Type.Union([Type.String(), Type.Null()], { description: 'sha256 of the applied bindings.yaml.' }),
    error: Type.Union(
      [Type.Object({ message: Type.String(), since: Type.String({ format: 'date-time' }) }), Type.Null()],
      { description: 'The last refusal, while it stands (cleared by the next good update).' },
    ),
  },
  { description: 'The policy directory as the daemon last read it.' },
);
export type PolicyDirectoryStatus = Static<typeof PolicyDirectoryStatus>;

export const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('shutting-down')], {
    description:
      '`degraded`: serving, but part of it cannot do what it was asked to (on this host, or a policy problem); `problems` says what and why.',
  }),
  problems: Type.Optional(
    Type.Array(Type.String(), { description: 'Present when degraded: each problem and what to do about it.' }),
  ),
  version: Type.String(),
  uptimeS: Type.Number({ minimum: 0, description: 'Seconds since the daemon started.' }),
  detail: Type.Optional(
    Type.Object(
      {
        policiesLoaded: Type.Integer({ minimum: 0 }),
        vmsRegistered: Type.Integer({ minimum: 0 }),
        bindings: Type.Array(Binding),
        queueDepth: Type.Integer({ minimum: 0 }),
        inFlight: Type.Integer({ minimum: 0 }),
        problems: Type.Array(HealthProblem, {
          description: 'The policy problems in full (the top-level `problems` has them as lines).',
        }),
        policyDirectory: Type.Optional(PolicyDirectoryStatus),
      },
      { description: 'Admin socket only.' },
    ),
  ),
});
export type HealthResponse = Static<typeof HealthResponse>;
