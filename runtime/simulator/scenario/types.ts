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
  /** Whether the daemon holds CAP_SYS_RESOURCE (may raise hard limits). */
  canRaiseHardLimit: boolean;
  /** Whether a policy is bound to the operation; false: the daemon denies no-policy. */
  policyBound: boolean;
}

/** The simulated host's processes: VM members, host processes, and pids that name nothing. */
export interface ScenarioWorld {
  vms: ScenarioVm[];
  processes: ScenarioProcess[];
  /** Pids that name no process (exited, never existed): the kernel answers ESRCH. */
  absentPids: number[];
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
  /** 'any': the decision is free, the other expectations (calls, logs, fuel) still hold. */
  decision: 'allow' | 'deny' | 'any';
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
  /** A world of the case's own, replacing the scenario's (e.g. cases written from audit records). */
  world?: ScenarioWorld;
  position?: SourcePosition;
}

export interface Scenario extends ScenarioWorld {
  host: ScenarioHost;
  cases: ScenarioCase[];
}
