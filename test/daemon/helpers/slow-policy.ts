// A real AssemblyScript policy, built in the test: allows everything, except that a request
// for exactly SLOW_BYTES spins until the engine's deadline kills it (a "slow path" a VM can hit).
import path from 'node:path';
import { compileAssemblyScript } from '../../../scripts/build-guests.ts';
import { componentize } from '../../../runtime/packaging/componentize.ts';
import { REPO_ROOT } from './daemon-process.ts';

export const SLOW_BYTES = 7777n;

const SOURCE = `
import { Decision, Request, allow, deny, policy } from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";

function decide(req: Request): Decision {
  if (req.bytes == ${SLOW_BYTES}) {
    // A 64-bit LCG: x never returns to 1 in practice, and the optimizer cannot prove it.
    let x: u64 = req.bytes;
    while (x != 1) x = x * 6364136223846793005 + 1442695040888963407;
    return deny("unreachable");
  }
  return allow();
}

policy(decide);
`;

export async function buildSlowPolicy(): Promise<Uint8Array> {
  const entry = path.join(REPO_ROOT, 'guest-examples/assemblyscript/__daemon-test-slow__/index.ts');
  return componentize(await compileAssemblyScript(entry, { virtualFiles: { [entry]: SOURCE } }));
}
