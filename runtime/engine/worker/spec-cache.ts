// The worker's copy of the last CapabilitySpec, keyed by its serialized bytes: consecutive jobs
// from the same requester carry identical specs, and deserializing costs more than comparing.
// The copy is deep-frozen, so nothing an evaluation does to it can reach the next one.
import { deserialize } from 'node:v8';
import type { CapabilitySpec } from '../../capabilities/spec.ts';

/** Only plain objects and arrays can be frozen for good (a Map or a typed array stays mutable). */
function plainData(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return false;
  return Object.values(value).every(plainData);
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

export class SpecCache {
  #bytes: Uint8Array | undefined;
  #spec: CapabilitySpec | undefined;

  get(bytes: Uint8Array): CapabilitySpec {
    if (this.#spec !== undefined && this.#bytes !== undefined && sameBytes(this.#bytes, bytes)) return this.#spec;
    const spec = deserialize(bytes) as CapabilitySpec;
    if (!plainData(spec)) {
      this.#bytes = this.#spec = undefined;
      return spec; // not cacheable: a fresh copy every time
    }
    deepFreeze(spec);
    this.#bytes = bytes;
    this.#spec = spec;
    return spec;
  }
}
