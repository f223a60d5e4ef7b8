// The attacker's first image, as launcher-launch.ts is the compile launcher's: re-executes as
// sandbox-attacker.ts without capabilities, through the same code.
import { fileURLToPath } from 'node:url';
import { relaunchConfined } from '../../../../runtime/engine/compile/compile-sandbox.ts';

const ATTACKER = fileURLToPath(new URL('./sandbox-attacker.ts', import.meta.url));
relaunchConfined(ATTACKER, 'json'); // spawnChild's IPC channel
await import(ATTACKER);
