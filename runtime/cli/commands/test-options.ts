// The options of `capgate test`, shared by the command's definition (test.ts) and its run
// (test-run.ts, loaded lazily), which would otherwise import each other.
import type { Reporter } from '../testing/reporters.ts';

export interface TestOptions {
  json: boolean;
  fromAudit?: string;
  writeScenario?: string;
  compare?: string;
  run?: string;
  quiet: boolean;
  watch: boolean;
  reporter: Reporter;
  fuel?: number;
  deadlineMs?: number;
}
