// Engine limits as the config file sets them and a revision reports them.
import { Type, type Static, type TInteger } from '@sinclair/typebox';
import { ENGINE_LIMIT_SPEC as L } from '../limit-spec.ts';

const limit = (k: keyof typeof L): TInteger =>
  Type.Integer({ minimum: L[k].minimum, maximum: L[k].maximum, default: L[k].default, description: L[k].description });

export const EngineLimits = Type.Object(
  {
    fuel: limit('fuel'),
    memoryPages: limit('memoryPages'),
    deadlineMs: limit('deadlineMs'),
    maxModuleBytes: limit('maxModuleBytes'),
    maxCapabilityCalls: limit('maxCapabilityCalls'),
    maxGuestStringBytes: limit('maxGuestStringBytes'),
    maxLogLines: limit('maxLogLines'),
    maxLogBytes: limit('maxLogBytes'),
    maxTableEntries: limit('maxTableEntries'),
    maxElementEntries: limit('maxElementEntries'),
    maxDataBytes: limit('maxDataBytes'),
    maxSegments: limit('maxSegments'),
    maxGlobals: limit('maxGlobals'),
    maxFunctions: limit('maxFunctions'),
    maxCodeBytes: limit('maxCodeBytes'),
    maxTypeDepth: limit('maxTypeDepth'),
    maxTypeWidth: limit('maxTypeWidth'),
    maxInstantiateMs: limit('maxInstantiateMs'),
  },
  {
    additionalProperties: false,
    description: 'Resource limits of one policy: what an evaluation may use, and what an upload may declare.',
  },
);
export type EngineLimits = Static<typeof EngineLimits>;
