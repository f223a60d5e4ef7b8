// The output formats of `capgate test`, apart from their implementations (run-scenario.ts), so
// the command can list them without loading the simulator.
export const REPORTERS = ['text', 'junit', 'tap'] as const;
export type Reporter = (typeof REPORTERS)[number];
