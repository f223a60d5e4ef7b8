// Start-up of the effects journal (effects/effect-journal.ts): open it beside the database, and
// audit what a kill -9 left in it, decisions whose effects were recorded but not the decision
// (effects/recover.ts), before anything else can act. The journal is zeroed as it is opened.
import type { Logger } from 'pino';
import { loadLinuxCapabilities, memlockNow, undoMemlockEffect } from '../capabilities/create.ts';
import { EffectJournal, effectsJournalFileOf } from '../effects/effect-journal.ts';
import { recoverLostDecisions } from '../effects/recover.ts';
import type { Store } from '../store/store.ts';

export async function openEffectsJournal(database: string, store: Store, logger: Logger): Promise<EffectJournal> {
  const { journal, intents } = EffectJournal.open(effectsJournalFileOf(database));
  try {
    if (intents.length > 0) {
      await loadLinuxCapabilities();
      const records = recoverLostDecisions(intents, {
        hasRecord: (decisionId) => store.audit.get(decisionId) !== null,
        limitNow: memlockNow,
        undoOne: undoMemlockEffect,
      });
      if (records.length > 0) {
        store.audit.append(records);
        // Durability 'full': on disk before anything else runs (an fdatasync on the thread pool).
        await store.audit.syncNow();
        for (const r of records)
          logger.warn(
            { decisionId: r.decisionId, vm: r.vm?.name, policy: r.policy?.name, capabilityCalls: r.capabilityCalls },
            'a decision was lost with its effects in the world (the daemon stopped in between); audited as decision-lost, effects undone where possible',
          );
      }
    }
    return journal;
  } catch (err) {
    journal.close();
    throw err;
  }
}
