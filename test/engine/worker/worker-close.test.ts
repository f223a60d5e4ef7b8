// Closing a slot whose worker is still starting: the worker may be inside koffi then (binding libc
// to lower its priority), and a thread terminated there aborts the whole process. close() lets it
// finish starting first. Real worker threads.
import { describe, expect, it } from 'vitest';
import { WorkerSlot } from '../../../runtime/engine/worker/worker-slot.ts';

describe('WorkerSlot.close', () => {
  it('terminates a worker that is still starting only once it is ready', async () => {
    for (let i = 0; i < 3; i++) {
      const slot = new WorkerSlot(new Map(), { linuxCapabilities: false });
      expect(slot.started).toBe(false);
      await slot.close();
      expect(slot.started).toBe(true);
    }
  });

  it('closes a ready worker at once, and a second close is harmless', async () => {
    const slot = new WorkerSlot(new Map(), { linuxCapabilities: false });
    await slot.ready();
    await slot.close();
    await slot.close();
    expect(slot.started).toBe(true);
  });
});
