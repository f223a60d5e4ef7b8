// The compile process's first image, what the daemon starts: it gives up every capability and
// re-executes the process as compile-main, so that no thread of the process that reads an
// upload holds one. Capabilities are per thread, and a Node process has threads (V8's platform
// workers, which compile WebAssembly) before its first line of JavaScript: dropping them here
// would leave those holding theirs. Re-executed from this thread, without capabilities and under
// no_new_privs, the kernel grants the new image none (os/privileges.ts). Costs one more Node
// start (~30-60 ms), only where there is something to drop.
import { fileURLToPath } from 'node:url';
import { RUNNING_COMPILED } from '../../bootstrap/package-root.ts';
import { dropPrivilegesOfThisThread, execWithoutPrivileges } from '../../os/privileges.ts';
import { holdsCapabilities, processThreadCredentials } from '../../os/thread-credentials.ts';
import { compileChannelFd, recordRelaunchFailure } from './compile-sandbox.ts';

const MAIN = fileURLToPath(new URL(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts', import.meta.url));

if (processThreadCredentials('self').some(holdsCapabilities)) {
  let failure: string;
  try {
    dropPrivilegesOfThisThread();
    const channel = compileChannelFd();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // Node takes these two out of its environment once it has opened the channel.
    env.NODE_CHANNEL_FD = String(channel);
    env.NODE_CHANNEL_SERIALIZATION_MODE = 'advanced';
    // libuv's io_uring (off by default since Node 20.11) submits file operations no seccomp filter sees.
    env.UV_USE_IO_URING = '0';
    failure = execWithoutPrivileges(MAIN, process.execArgv, env, [0, 1, 2, channel]);
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
  }
  // Still here: the exec failed. compile-main reports the threads that kept their capabilities.
  recordRelaunchFailure(failure);
}
await import(RUNNING_COMPILED ? './compile-main.js' : './compile-main.ts');
