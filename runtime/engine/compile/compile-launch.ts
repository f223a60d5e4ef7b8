// The compile process's first image, what the daemon starts: it gives up every capability and
// re-executes the process as compile-main, so that no thread of the process that reads an
// upload holds one. Capabilities are per thread, and a Node process has threads (V8's platform
// workers, which compile WebAssembly) before its first line of JavaScript: dropping them here
// would leave those holding theirs. Re-executed from this thread, without capabilities and under
// no_new_privs, the kernel grants the new image none (os/privileges.ts). Costs one more Node
// start (~30-60 ms), only where there is something to drop.
import { fileURLToPath } from 'node:url';
import { RUNNING_COMPILED } from '../../bootstrap/package-root.ts';
import { relaunchWithoutCapabilities } from './compile-sandbox.ts';

relaunchWithoutCapabilities(
  fileURLToPath(new URL(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts', import.meta.url)),
  'advanced', // startNodeProcess's
);
// Still here: nothing to drop (a daemon that is not root), or the exec failed, which
// compile-main's sandbox reports.
await import(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts');
