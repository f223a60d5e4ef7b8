// Per-evaluation arena on the stub runtime's bump heap: a mark when evaluate starts, a rewind
// to it in cabi_post_evaluate. Everything evaluate (and the host, through cabi_realloc)
// allocated is released at once; what the start function allocated (module-scope constants)
// lies below the mark and survives, so a host that reuses an instance still gets right answers.
import { BLOCK, BLOCK_OVERHEAD } from "~lib/rt/common";

let mark: usize = 0;

/** Remembers the current heap top (as an empty block). Call first thing in evaluate. */
export function markArena(): void {
  // The rewind below relies on the stub runtime's bump allocator (0 = --runtime stub).
  if (ASC_RUNTIME != 0) ERROR("the capgate SDK needs `--runtime stub` (see host-api/assemblyscript/README.md)");
  mark = heap.alloc(0);
}

/** Releases everything allocated since markArena(); a no-op without a mark. */
export function rewindArena(): void {
  if (mark == 0) return;
  // The stub runtime frees only its last block. Freeing an empty probe puts the heap top at
  // probe's block; stretching the mark's block up to there makes it the last block, and
  // freeing it moves the top back to where it was before markArena().
  const probe = heap.alloc(0);
  heap.free(probe);
  changetype<BLOCK>(mark - BLOCK_OVERHEAD).mmInfo = probe - BLOCK_OVERHEAD - mark;
  heap.free(mark);
  mark = 0;
}
