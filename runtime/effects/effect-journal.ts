// The effects journal: an append-only file beside the database (`<db>-effects-journal`, 0600)
// where every effect a policy is about to have is recorded before it happens (effect-intent.ts).
// The thread that acts writes the intent, with one write() of one frame (store/journal-frames.ts)
// on its own O_APPEND fd: the main thread for a speculative run, an evaluation worker otherwise.
// O_APPEND makes each write land whole at the end whatever the other writers do.
// The decision record follows in the audit log. At start-up, an intent whose decision has no
// record is what a kill -9 left between an effect and its decision: effects/recover.ts audits it.
// The journal is emptied when no decision is open and every intent in it has its record.
//
// Durability: a write() to the page cache, without fsync, with `audit.durability` 'full' too.
// The effect it precedes is a resource limit of a live process: a power loss or a kernel crash
// that could lose the intent also ends that process and its limit, so the intent would only
// describe an effect no longer in the world. What must survive is a crash of the daemon alone,
// and the page cache survives that. (An fsync here would put a disk flush on the main thread
// for every speculative run that acts.)
import fs from 'node:fs';
import { encodeFrames, scanFrames } from '../store/journal-frames.ts';
import { intentPayload, parseIntentPayload, type RecordedIntent, type SetMemlockIntent } from './effect-intent.ts';

/** Size past which an idle daemon empties the journal: a few thousand intents. */
const TRUNCATE_ABOVE_BYTES = 1024 * 1024;

/** The effects journal of a database file. */
export function effectsJournalFileOf(databaseFile: string): string {
  return `${databaseFile}-effects-journal`;
}

export class EffectJournalError extends Error {
  override readonly name = 'EffectJournalError';
}

export interface OpenedEffectJournal {
  journal: EffectJournal;
  /** Every intent the journal held at open, in the order written. */
  intents: RecordedIntent[];
  /** Bytes that were no valid frame (a write cut short). */
  skippedBytes: number;
}

export class EffectJournal {
  private constructor(
    readonly file: string,
    private fd: number,
  ) {}

  /** The daemon's side: opens (creates) the journal and reads what it holds. */
  static open(file: string): OpenedEffectJournal {
    const { O_RDWR, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(file, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      const { items, skippedBytes } = scanFrames(fs.readFileSync(fd), parseIntentPayload);
      return { journal: new EffectJournal(file, fd), intents: items, skippedBytes };
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** A writer's side (an evaluation worker): appends to the journal the daemon created. */
  static openForAppend(file: string): EffectJournal {
    const { O_WRONLY, O_APPEND, O_NOFOLLOW } = fs.constants;
    return new EffectJournal(file, fs.openSync(file, O_WRONLY | O_APPEND | O_NOFOLLOW));
  }

  /** Records an intent with one write(); throws EffectJournalError when it is not all written. */
  append(contextJson: string, intent: SetMemlockIntent): void {
    if (this.fd < 0) throw new EffectJournalError(`the effects journal ${this.file} is closed`);
    const bytes = encodeFrames([intentPayload(contextJson, intent, new Date())]);
    let written: number;
    try {
      written = fs.writeSync(this.fd, bytes);
    } catch (err) {
      throw new EffectJournalError(`writing to the effects journal ${this.file} failed: ${(err as Error).message}`);
    }
    // A short write leaves a cut frame that readers skip (scanFrames); the intent is not recorded.
    if (written !== bytes.length) throw new EffectJournalError(`short write to the effects journal ${this.file}: ${written} of ${bytes.length} bytes (disk full?)`);
  }

  /** Bytes in the file now (every writer's). */
  size(): number {
    return this.fd < 0 ? 0 : fs.fstatSync(this.fd).size;
  }

  /** Empties the journal. Only when no thread can be writing to it and every intent is audited. */
  truncate(): void {
    if (this.fd >= 0) fs.ftruncateSync(this.fd, 0);
  }

  /** truncate() once the journal holds more than `aboveBytes` (same precondition). */
  truncateIfLarge(aboveBytes = TRUNCATE_ABOVE_BYTES): void {
    if (this.fd >= 0 && this.size() > aboveBytes) this.truncate();
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
