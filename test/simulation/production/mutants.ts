/**
 * Deliberate bugs in the code around the 2PC core, patched in for one run only, to show that
 * the production-code simulator catches them (a simulator that cannot fail proves nothing):
 * - `send-before-persist`: the driver lets a step's messages go before its log writes are
 *   durable, and forgets a write that failed (the durability rule broken in the driver);
 * - `drop-failed-step`: the runtime drops a step that threw instead of retrying it;
 * - `participant-reply-before-commit`: the SDK's 2PC participant sends its vote or ack while
 *   its row is still uncommitted (inside the step), so a commit that fails or a crash leaves
 *   a YES in the coordinator's hands that the participant does not remember.
 */
import { TwoPhaseDriver } from '../../../src/coordinator/two-phase/two-phase.driver';
import { TransactionRuntime } from '../../../src/runtime/transaction-runtime';
import { ParticipantDriver } from '../../../src/participant-sdk/participant.driver';

export const MUTANTS = ['send-before-persist', 'drop-failed-step', 'participant-reply-before-commit'] as const;
export type Mutant = (typeof MUTANTS)[number];

type Patchable = Record<string, unknown>;

/** Applies `mutant`; returns the function that restores the production code. */
export function applyMutant(mutant: Mutant): () => void {
  const [target, name, replacement] = patchOf(mutant);
  const original = target[name];
  target[name] = replacement(original as (...args: unknown[]) => unknown);
  return () => {
    target[name] = original;
  };
}

function patchOf(mutant: Mutant): [Patchable, string, (original: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown] {
  switch (mutant) {
    case 'send-before-persist':
      return [
        TwoPhaseDriver.prototype as unknown as Patchable,
        'persist',
        (original) =>
          function (this: unknown, ...args: unknown[]) {
            void Promise.resolve(original.apply(this, args)).catch(() => undefined);
            return Promise.resolve(undefined);
          },
      ];
    case 'drop-failed-step':
      return [TransactionRuntime.prototype as unknown as Patchable, 'retryLater', () => () => undefined];
    case 'participant-reply-before-commit':
      return [
        ParticipantDriver.prototype as unknown as Patchable,
        'stepLocked',
        (original) =>
          async function (this: { options: { publish: (m: readonly unknown[]) => Promise<void> } }, ...args: unknown[]) {
            const outcome = (await original.apply(this, args)) as { messages: readonly unknown[] } | undefined;
            if (!outcome || outcome.messages.length === 0) return outcome;
            await this.options.publish(outcome.messages);
            return { ...outcome, messages: [] };
          },
      ];
  }
}
