// The SDK's abort handler: an AssemblyScript `throw`, a failed bounds check or assertion ends
// here. It logs what went wrong and where (`panic: <message> at <file>:<line>:<column>`, an
// error line in the audit record and the simulator's output), then traps: the decision is a
// deny `trap` that names the function. Build with `--use abort=capgateAbort` (capgate build does).
import { LogLevel } from "./types";
import { log } from "./host";

// A second abort while logging the first (e.g. the heap is full) only traps.
let aborting = false;

// @ts-ignore: decorator
@global
export function capgateAbort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  if (!aborting) {
    aborting = true;
    const what = message === null ? "abort" : changetype<string>(message);
    const where = fileName === null ? "?" : changetype<string>(fileName);
    log(LogLevel.Error, "panic: " + what + " at " + where + ":" + lineNumber.toString() + ":" + columnNumber.toString());
  }
  unreachable();
}
