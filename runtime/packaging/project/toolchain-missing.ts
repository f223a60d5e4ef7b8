// ToolchainMissingError from the guest build scripts -> ProjectBuildError with the install
// instructions as the hint. Their messages read "no <compiler> found... . Install: <what>".
import { ToolchainMissingError } from '../toolchains/run-tool.ts';
import { ProjectBuildError } from './project-build-error.ts';

export function findToolchainOrExplain<T>(find: () => T): T {
  try {
    return find();
  } catch (e) {
    if (!(e instanceof ToolchainMissingError)) throw e;
    const at = e.message.indexOf('. Install');
    if (at < 0) throw new ProjectBuildError('toolchain-missing', e.message);
    throw new ProjectBuildError('toolchain-missing', e.message.slice(0, at), e.message.slice(at + 2));
  }
}
