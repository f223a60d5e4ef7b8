// Worker entry. Workers do not inherit a TypeScript loader under every runner (vitest's forks
// do not; tsx's CLI does), so register it here, then load the TypeScript worker.
import '../../bootstrap/register.mjs';

await import('./worker-main.ts');
