// The bindings the request path reads: an immutable snapshot replaced only after the database
// transaction that changed it committed. A request reads the snapshot once, at its start, so
// it finishes on the revision it started with whatever an admin does meanwhile.
import type { Operation } from '../../contract/types.ts';
import type { Binding } from '../../wire/index.ts';

export class BindingTable {
  private snapshot: ReadonlyMap<Operation, Readonly<Binding>> = new Map();

  get(operation: Operation): Readonly<Binding> | null {
    return this.snapshot.get(operation) ?? null;
  }

  all(): Binding[] {
    return [...this.snapshot.values()];
  }

  replace(bindings: readonly Binding[]): void {
    this.snapshot = new Map(bindings.map((b) => [b.operation, Object.freeze({ ...b })]));
  }
}
