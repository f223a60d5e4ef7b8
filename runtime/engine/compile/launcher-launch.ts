// The compile launcher's first image, what the daemon starts (at start-up, while its own process
// is small): it gives up every capability and re-executes the process as launcher-main, so that
// no thread of the launcher, nor of any compile process it starts, holds one. Capabilities are
// per thread, and a Node process has threads (V8's platform workers) before its first line of
// JavaScript: dropping them here would leave those holding theirs. Re-executed from this thread,
// without capabilities and under no_new_privs, the kernel grants the new image none
// (os/privileges.ts); with io_uring_setup refused first, its libuv opens no io_uring
// instance, nor does any compile process's (they inherit the filter; relaunchConfined says why
// that matters); and, entered first, a Landlock domain holds every thread of the new image and
// of the compile processes it starts (none of root's files is theirs to read). One more Node start, once per launcher: the compile processes it starts have
// nothing left to shed and start without re-executing.
import { fileURLToPath } from 'node:url';
import { RUNNING_COMPILED } from '../../bootstrap/package-root.ts';
import { relaunchConfined } from './compile-sandbox.ts';

relaunchConfined(
  fileURLToPath(new URL(RUNNING_COMPILED ? './launcher-main.js' : './launcher-main.ts', import.meta.url)),
  'advanced', // startNodeProcess's
);
// Still here: nothing to shed (a daemon not root, on Node 20), or the exec failed, which the
// launcher reports to the daemon, and the compile process's sandbox check then refuses.
await import(RUNNING_COMPILED ? './launcher-main.js' : './launcher-main.ts');
