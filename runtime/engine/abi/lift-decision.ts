// Lifts `evaluate`'s return value (a pointer to a `decision`) out of guest memory.
import type { PolicyDecision } from '../../contract/types.ts';
import { abiFault } from './guest-fault.ts';
import type { GuestMemory } from './guest-memory.ts';
import { DECISION, DECISION_ALLOW, DECISION_DENY } from './layout.ts';

export function liftDecision(memory: GuestMemory, retptr: number, maxStringBytes: number): PolicyDecision {
  memory.check('evaluate result', retptr, DECISION.size, DECISION.align);
  const base = retptr >>> 0;
  const disc = memory.u8('decision discriminant', base + DECISION.disc);
  if (disc === DECISION_ALLOW) return { kind: 'allow' };
  if (disc !== DECISION_DENY) throw abiFault(`decision discriminant ${disc} is neither 0 (allow) nor 1 (deny)`);
  const ptr = memory.u32('deny reason pointer', base + DECISION.reasonPtr);
  const len = memory.u32('deny reason length', base + DECISION.reasonLen);
  return { kind: 'deny', reason: memory.string('deny reason', ptr, len, maxStringBytes) };
}
