// A validated scenario: the simulated host and the cases to run against a policy.
// Produced by parseScenario (from YAML) or by replay (from audit records).
import type { CapabilityError, LogLevel, Operation, VmIdentity } from '../../contract/types.ts';
import type { SimulatedLimit } from '../../capabilities/simulated/world.ts';

/** Where something came from in the scenario file, for messages ("scenario.yaml:12:5"). */
export interface SourcePosition {
  line: number;
  col: number;
}

export interface ScenarioVm {
  identity: VmIdentity;
  pids: number[];
}

export interface ScenarioProcess {
  pid: number;
  memlock: SimulatedLimit;
}

export interface ScenarioHost {
  canRaiseHardLimit: boolean;
}

export interface ScenarioRequest {
  operation: Operation;
  requesterPid: number;
  requesterUid: number;
  targetPid: number;
  bytes: bigint;
}

/** Exact text, or a regular expression written /like this/ in the file. */
export type ReasonMatcher = { kind: 'exact'; text: string } | { kind: 'pattern'; regex: RegExp };

/** One expected capability call; fields left out of the file are not compared. */
export type ExpectedCall =
  | { op: 'set-memlock'; pid?: number; bytes?: bigint; result?: 'ok' | CapabilityError }
  | { op: 'query-vm-identity'; pid?: number; result?: 'some' | 'none' };

export interface ExpectedLog {
  level?: LogLevel;
  message: ReasonMatcher;
}

export interface CaseExpectation {
  decision: 'allow' | 'deny';
  reason?: ReasonMatcher;
  /** When present, the calls must match in order and number. */
  calls?: ExpectedCall[];
  /** When present, the log lines must match in order and number. */
  logs?: ExpectedLog[];
  /** Fuel ceiling: the case fails if the policy used more. */
  maxFuel?: number;
}

export interface ScenarioCase {
  name: string;
  request: ScenarioRequest;
  expect: CaseExpectation;
  /** Per-case override of the scenario's host settings. */
  host?: Partial<ScenarioHost>;
  position?: SourcePosition;
}

export interface Scenario {
  host: ScenarioHost;
  vms: ScenarioVm[];
  processes: ScenarioProcess[];
  cases: ScenarioCase[];
}
