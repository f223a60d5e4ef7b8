// Machine-readable kinds of a deny: what the engine reports for a failed evaluation, and what the
// daemon decides before any policy runs. The engine, the audit and the wire all speak these.
import { SIGNATURE_PROBLEMS } from './policies.ts';

export const ERROR_KINDS = [
  'invalid-module', // not a component, malformed, wrong exports/types, oversized
  'disallowed-import', // imports anything but capgate:policy/{host,types}@1.0.0
  'fuel-exhausted', // instruction budget used up
  'memory-limit', // memory.grow refused (and the guest trapped) or initial memory too large
  'trap', // unreachable, stack overflow, division by zero, ...
  'timeout', // wall-clock deadline passed; the worker was terminated
  'invalid-abi', // out-of-bounds pointer/length, bad discriminant, bad UTF-8, oversized string
  'quota-exceeded', // more capability calls than allowed in one evaluation
  'host-error', // a capability implementation or the engine itself failed
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/**
 * Denies the daemon decides itself: before any policy runs, or, for `decision-lost`, at a
 * restart, for a decision whose effects were recorded (intents) but not its decision: the
 * daemon was killed in between. Its record lists those effects and how undoing them went.
 * `unknown-target`: the requester is in a pid namespace below the daemon's, and its targetPid
 * names no process of its VM in that namespace. A signature problem: the bound revision may not
 * run under the daemon's trust roots (its binding is suspended).
 */
export const DAEMON_DENY_KINDS = [
  'unknown-requester',
  'no-policy',
  'deadline',
  'decision-lost',
  'unknown-target',
  ...SIGNATURE_PROBLEMS,
] as const;
export type DaemonDenyKind = (typeof DAEMON_DENY_KINDS)[number];

/** `errorKind` of a decision and of its audit record. */
export const DECISION_ERROR_KINDS = [...ERROR_KINDS, ...DAEMON_DENY_KINDS] as const;
export type DecisionErrorKind = ErrorKind | DaemonDenyKind;
