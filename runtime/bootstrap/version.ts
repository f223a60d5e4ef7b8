// capgate's version and the policy contract it runs, for `capgate --version` and the health
// answer. A constant, not a read of package.json at run time: a test keeps them equal.
import { CONTRACT_PACKAGE } from '../contract/types.ts';

export const CAPGATE_VERSION = '0.1.0';

/** The WIT package policies are built against (host-api/wit/policy.wit). */
export const CONTRACT_VERSION = CONTRACT_PACKAGE;
