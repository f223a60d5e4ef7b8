// Registers skip-transform-hook.mjs once per process. Hooks registered later run first, so this
// takes precedence over tsx's loader for the packages it lists; elsewhere it is a no-op.
import { register } from 'node:module';

let registered = false;

export function registerSkipTransformHook(): void {
  if (registered) return;
  registered = true;
  try {
    register('./skip-transform-hook.mjs', import.meta.url);
  } catch {
    // Older Node without module.register: everything still works, only slower to compile.
  }
}
