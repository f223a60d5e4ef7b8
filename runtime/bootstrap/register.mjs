// The development loader: makes this process able to run capgate's TypeScript sources through
// tsx (a devDependency). Only development and tests use it: worker threads started from the
// sources (worker-thread.ts) and tests' helper processes. What ships (the bin, the daemon, its
// workers, the npm scripts) runs the compiled JavaScript in dist/ and never loads this: tsx
// caches in $TMPDIR and loads what it finds there (SECURITY.md).
import module from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';
import { loadSync } from './skip-transform-hook.mjs';

registerTsx();
// Registered after tsx, so it runs first: see skip-transform-hook.mjs.
if (typeof module.registerHooks === 'function') module.registerHooks({ load: loadSync });
else module.register('./skip-transform-hook.mjs', import.meta.url);
