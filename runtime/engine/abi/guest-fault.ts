// A failure raised by the host side of one evaluation. It is thrown out of a host import (so the
// guest stops at once) and also recorded in the evaluation state, because a guest built with
// exception handling could catch the throw: the recorded fault wins either way (fail closed).
import type { ErrorKind } from '../outcome.ts';

export class GuestFault extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = 'GuestFault';
    this.kind = kind;
  }
}

/** An ABI violation by the guest: bad pointer, length, alignment, discriminant or UTF-8. */
export function abiFault(message: string): GuestFault {
  return new GuestFault('invalid-abi', message);
}
