// The guest simulator as a library: parse a scenario, run it against a compiled policy with the
// daemon's own engine, report; or replay audit records against a new revision.
export { parseScenario, type ParseScenarioResult, type ScenarioIssue } from './scenario/parse.ts';
export type * from './scenario/types.ts';
export { buildWorld } from './world.ts';
export { runScenario, type CaseResult, type ScenarioResult, type RunOptions } from './runner.ts';
export { checkOutcome, type Mismatch } from './check.ts';
export { formatScenarioResult, scenarioResultToJson, summaryLine, PLAIN, type Paint } from './report.ts';
export { parseByteSize, formatByteSize } from './byte-size.ts';
export { readAuditRecords, type ReadAuditResult } from './replay/read-audit.ts';
export { replayInputFrom, type ReplayInput } from './replay/world-from-record.ts';
export { replayAudit, type ReplayResult, type ReplayedDecision } from './replay/replay.ts';
export { formatReplayResult, replayResultToJson } from './replay/report.ts';
