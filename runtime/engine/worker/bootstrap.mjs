// Worker entry. Workers do not inherit a TypeScript loader under every runner (vitest's forks
// do not; tsx's CLI does), so register tsx here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
