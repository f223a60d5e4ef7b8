// The effects journal: a file beside the database (`<db>-effects-journal`, 0600) where every
// effect a policy is about to have is recorded before it happens (effect-intent.ts), and from
// which it is cleared once its decision's record is committed.
//
// The file is a fixed array of slots, mapped shared into memory (mmap) by each thread that acts:
// the main thread for a speculative run, an evaluation worker otherwise. Recording an intent is
// a claim of a free slot (shared memory, Atomics) and a copy of one frame into it: no system
// call on the decision path, and the stores reach the file's pages in the page cache, which
// outlive the process. Slot: u32 payload length (0: free), u32 crc32 of the payload, payload =
// UTF-8 JSON; the length is stored last, so a kill mid-copy leaves no frame that passes the crc.
// At start-up, what the slots hold is what a kill -9 left between effects and their decisions
// (effects/recover.ts); then the file is zeroed.
//
// Durability: the page cache, without fsync, with `audit.durability` 'full' too. The effect an
// intent precedes is a resource limit of a live process: a power loss or a kernel crash that
// could lose the intent also ends that process and its limit, so the intent would only describe
// an effect no longer in the world. What must survive is a crash of the daemon alone, and the
// page cache survives that. (An fsync would put a disk flush on the main thread for every
// speculative run that acts.)
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { libc } from '../os/libc.ts';
import {
  parseIntentPayload,
  writeIntentPayload,
  type IntentContext,
  type RecordedIntent,
  type SetMemlockIntent,
} from './effect-intent.ts';

/** Slots of the journal: far above the effects in flight at once (evaluations in flight, at most
 * limits.maxCapabilityCalls each); when all are taken, an effect is refused rather than unrecorded. */
export const JOURNAL_SLOTS = 1024;
/** Bytes of a slot: an intent is ~600 bytes (its context carries no VM labels). */
export const SLOT_BYTES = 1024;
const HEADER = 8;

/** The effects journal of a database file. */
export function effectsJournalFileOf(databaseFile: string): string {
  return `${databaseFile}-effects-journal`;
}

export class EffectJournalError extends Error {
  override readonly name = 'EffectJournalError';
}

/** What a worker needs to write to the daemon's journal: the daemon's fd (fds are per process),
 * and the claims of the slots, shared by every thread. */
export interface SharedJournal {
  file: string;
  fd: number;
  slots: number;
  /** Int32 per slot: 0 free, else the id of the thread that claimed it. */
  claims: SharedArrayBuffer;
}

/** The thread id of the main thread in the claims; workers get ids from 2 up. */
export const MAIN_THREAD = 1;

export interface OpenedEffectJournal {
  journal: EffectJournal;
  /** Every intent the journal held at open (an effect whose decision may be lost), in slot order. */
  intents: RecordedIntent[];
}

export class EffectJournal {
  readonly #bytes: Buffer;
  readonly #view: DataView;
  readonly #claims: Int32Array;
  #closed = false;

  private constructor(
    readonly shared: SharedJournal,
    /** Claims made by this journal carry this id. */
    readonly owner: number,
    private readonly memory: ArrayBuffer,
    /** Of this thread's mapping, for munmap (by any thread, once this one is gone). */
    readonly address: bigint,
    private readonly ownsFd: boolean,
  ) {
    this.#bytes = Buffer.from(memory);
    this.#view = new DataView(memory);
    this.#claims = new Int32Array(shared.claims);
  }

  get file(): string {
    return this.shared.file;
  }

  /**
   * The daemon's side: opens (creates) the journal, reads the intents it holds, zeroes it, maps it.
   * `slots`: a seam for tests (a journal that fills up).
   */
  static open(file: string, slots = JOURNAL_SLOTS): OpenedEffectJournal {
    const { O_RDWR, O_CREAT, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(file, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600); // libuv adds O_CLOEXEC
    try {
      fs.fchmodSync(fd, 0o600);
      const intents = readSlots(fs.readFileSync(fd));
      fs.ftruncateSync(fd, 0);
      fs.ftruncateSync(fd, slots * SLOT_BYTES);
      const shared: SharedJournal = { file, fd, slots, claims: new SharedArrayBuffer(slots * 4) };
      return { journal: EffectJournal.map(shared, MAIN_THREAD, true), intents };
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** A worker's side: maps the daemon's journal (its fd stays the daemon's). */
  static attach(shared: SharedJournal, owner: number): EffectJournal {
    return EffectJournal.map(shared, owner, false);
  }

  private static map(shared: SharedJournal, owner: number, ownsFd: boolean): EffectJournal {
    const m = libc().mmapShared(shared.fd, shared.slots * SLOT_BYTES);
    if (!m.ok) throw new EffectJournalError(`mapping the effects journal ${shared.file} failed: errno ${m.errno}`);
    return new EffectJournal(shared, owner, m.memory, m.address, ownsFd);
  }

  /** Records an intent in a free slot and returns the slot; throws EffectJournalError when it cannot. */
  append(context: IntentContext, intent: SetMemlockIntent): number {
    if (this.#closed) throw new EffectJournalError(`the effects journal ${this.file} is closed`);
    const slot = this.#claim();
    const at = slot * SLOT_BYTES;
    const written = writeIntentPayload(this.#bytes, at + HEADER, at + SLOT_BYTES, context, intent, Date.now());
    if (written < 0) {
      Atomics.store(this.#claims, slot, 0);
      throw new EffectJournalError(
        `an intent does not fit a slot of the effects journal (${SLOT_BYTES - HEADER} bytes)`,
      );
    }
    this.#view.setUint32(at + 4, crc32(this.#bytes.subarray(at + HEADER, at + HEADER + written)), true);
    this.#view.setUint32(at, written, true);
    return slot;
  }

  /** Clears a slot whose decision is recorded (or whose effect never happened). Any thread. */
  clear(slot: number): void {
    if (this.#closed || !Number.isInteger(slot) || slot < 0 || slot >= this.shared.slots) return;
    this.#view.setUint32(slot * SLOT_BYTES, 0, true);
    Atomics.store(this.#claims, slot, 0);
  }

  /**
   * Clears every slot still claimed. Only when no decision is open: then every intent's decision
   * is recorded (or was logged as unrecordable), and what is left is a claim whose worker was
   * stopped between claiming the slot and reporting it.
   */
  clearAll(): void {
    for (let slot = 0; slot < this.shared.slots; slot++) if (Atomics.load(this.#claims, slot) !== 0) this.clear(slot);
  }

  /** Slots claimed now (tests, metrics). */
  get claimed(): number {
    let n = 0;
    for (let slot = 0; slot < this.shared.slots; slot++) if (Atomics.load(this.#claims, slot) !== 0) n++;
    return n;
  }

  /** Unmaps this thread's view (the daemon's also closes the fd). No append or clear after. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().munmap(this.address, this.shared.slots * SLOT_BYTES);
    if (this.ownsFd) fs.closeSync(this.shared.fd);
  }

  /** The lowest free slot: the few intents in flight at once keep reusing the same page, which
   * stays dirty in the page cache (a clean page costs a write-protect fault on the next store). */
  #claim(): number {
    const n = this.shared.slots;
    for (let slot = 0; slot < n; slot++) {
      if (Atomics.compareExchange(this.#claims, slot, 0, this.owner) === 0) return slot;
    }
    throw new EffectJournalError(`the effects journal ${this.file} is full (${n} effects waiting for their decisions)`);
  }
}

/** The intents in a journal file's slots (torn or foreign bytes are skipped). */
function readSlots(content: Buffer): RecordedIntent[] {
  const intents: RecordedIntent[] = [];
  for (let at = 0; at + HEADER <= content.length; at += SLOT_BYTES) {
    const n = content.readUInt32LE(at);
    if (n === 0 || n > SLOT_BYTES - HEADER || at + HEADER + n > content.length) continue;
    const payload = content.subarray(at + HEADER, at + HEADER + n);
    if (crc32(payload) !== content.readUInt32LE(at + 4)) continue;
    const intent = parseIntentPayload(payload.toString('utf8'));
    if (intent !== null) intents.push(intent);
  }
  return intents;
}
