// The AssemblyScript example policies, compiled by the project's own build script (rebuilt only
// when a source is newer), so the simulator is tested with real compiled guests.
import { join } from 'node:path';
import { GUEST_EXAMPLES_DIR, buildAssemblyScriptGuests } from '../../../scripts/build-guests.ts';

export interface ExampleGuests {
  memlockCap: string;
  vfioOnly: string;
  memlockCapScenario: string;
  vfioOnlyScenario: string;
}

export async function ensureExampleGuests(): Promise<ExampleGuests> {
  await buildAssemblyScriptGuests({ onlyIfStale: true });
  const as = join(GUEST_EXAMPLES_DIR, 'assemblyscript');
  return {
    memlockCap: join(as, 'build', 'memlock-cap.wasm'),
    vfioOnly: join(as, 'build', 'vfio-only.wasm'),
    memlockCapScenario: join(as, 'memlock-cap', 'scenario.yaml'),
    vfioOnlyScenario: join(as, 'vfio-only', 'scenario.yaml'),
  };
}
