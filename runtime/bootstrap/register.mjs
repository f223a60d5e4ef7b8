// Makes this process able to run capgate's TypeScript: every entry point (the bin, the engine's
// workers, the npm scripts via `node --import`) goes through here, so they all load alike.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
// Registered after tsx, so it runs first: see skip-transform-hook.mjs.
register('./skip-transform-hook.mjs', import.meta.url);
