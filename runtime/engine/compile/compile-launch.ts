// The compile process's first image, what the daemon starts: it gives up every capability and
// re-executes the process as compile-main, so that no thread of the process that reads an
// upload holds one. Capabilities are per thread, and a Node process has threads (V8's platform
// workers, which compile WebAssembly) before its first line of JavaScript: dropping them here
// would leave those holding theirs. Re-executed from this thread, without capabilities and under
// no_new_privs, the kernel grants the new image none (os/privileges.ts); and, with io_uring_setup
// refused first, its libuv opens no io_uring instance (relaunchConfined says why that matters).
// Costs one more Node start (~0.12 s of a ~0.6 s cold compile, measured), only where there is
// something to shed: as root, or on Node 24 (its libuv always opens a ring).
import { fileURLToPath } from 'node:url';
import { RUNNING_COMPILED } from '../../bootstrap/package-root.ts';
import { relaunchConfined } from './compile-sandbox.ts';

relaunchConfined(
  fileURLToPath(new URL(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts', import.meta.url)),
  'advanced', // startNodeProcess's
);
// Still here: nothing to shed (a daemon not root, on Node 20), or the exec failed, which
// compile-main's sandbox reports.
await import(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts');
