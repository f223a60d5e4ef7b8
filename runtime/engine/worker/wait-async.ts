// Atomics.waitAsync (V8, Node >= 16), typed here because the project's lib is ES2023.
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

type WaitAsync = (array: Int32Array, index: number, expected: number, timeoutMs?: number) => WaitAsyncResult;

const impl = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/** Waits, without blocking the event loop, while array[index] === expected. */
export function waitAsync(array: Int32Array, index: number, expected: number, timeoutMs?: number): WaitAsyncResult {
  if (impl === undefined) throw new Error('Atomics.waitAsync is not available: Node.js >= 20 is required');
  return impl(array, index, expected, timeoutMs);
}
