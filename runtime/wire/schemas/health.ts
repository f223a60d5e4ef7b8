// Health of the daemon, as both sockets report it.
import { Type, type Static } from '@sinclair/typebox';
import { Binding } from './policies.ts';

export const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('shutting-down')], {
    description: '`degraded`: serving, but part of it cannot work on this host; `problems` says what and why.',
  }),
  problems: Type.Optional(Type.Array(Type.String(), { description: 'Present when degraded: each problem and what to do about it.' })),
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
      },
      { description: 'Admin socket only.' },
    ),
  ),
});
export type HealthResponse = Static<typeof HealthResponse>;
