// Compiles one policy through a CompileProcess from a process whose seccomp filter refuses
// seccomp(2) with ENOSYS, as a kernel without seccomp would: the compile process inherits the
// filter and cannot apply its own. With a third argument, that call instead (e.g.
// landlock_create_ruleset: a kernel without Landlock). Prints the compile's outcome as JSON
// ({ok:true, landlock} when it compiled: what the compile process said of its Landlock domain).
// Usage: node --import register.mjs no-seccomp-compiler.ts <policy.wasm> <allow|refuse> [syscall]
import { readFileSync } from 'node:fs';
import { CompileProcess } from '../../../../runtime/engine/compile/compile-process.ts';
import { DEFAULT_LIMITS } from '../../../../runtime/engine/limits.ts';
import { ENOSYS } from '../../../../runtime/os/errno.ts';
import { libc } from '../../../../runtime/os/libc.ts';
import { installSyscallFilter, syscallFilter } from '../../../../runtime/os/seccomp-filter.ts';
import { syscallArch } from '../../../../runtime/os/syscall-numbers.ts';

const [policy, mode, refusedCall = 'seccomp'] = process.argv.slice(2);
const arch = syscallArch();
if (policy === undefined || arch === undefined)
  throw new Error('usage: no-seccomp-compiler.ts <policy> <allow|refuse>');
const PR_SET_NO_NEW_PRIVS = 38;
const nnp = libc().prctl(PR_SET_NO_NEW_PRIVS, 1);
if (!nnp.ok) throw new Error(`prctl(PR_SET_NO_NEW_PRIVS) failed: errno ${nnp.errno}`);
const installed = installSyscallFilter(arch, syscallFilter(arch, [{ syscall: refusedCall, errno: ENOSYS }]));
if (!installed.ok) throw new Error(installed.why);

const compiler = new CompileProcess({ allowUnsandboxed: mode === 'allow' });
// The compile process keeps no event loop alive (as in the daemon, whose sockets do).
const alive = setInterval(() => undefined, 60_000);
const r = await compiler.compile(readFileSync(policy), DEFAULT_LIMITS);
await compiler.close();
clearInterval(alive);
const sandbox = compiler.lastSandbox;
process.stdout.write(JSON.stringify(r.ok ? { ok: true, landlock: sandbox?.applied ? sandbox.landlock : null } : r));
