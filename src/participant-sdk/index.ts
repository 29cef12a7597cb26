/**
 * Participant SDK: embed `TransactionParticipant` in a service to take part in distributed
 * transactions run by the coordinator. docs/protocol.md describes the wire contract.
 *
 *   const participant = new TransactionParticipant({
 *     name: 'inventory', brokers: ['localhost:19092'], databaseUrl: process.env.DATABASE_URL,
 *     handlers: {
 *       prepare: async ({ txnId, payload, db }) => ({ vote: 'YES' }),  // or { vote: 'NO', reason }
 *       commit: async ({ txnId, payload, db }) => {},
 *       abort: async ({ txnId, payload, db }) => {},
 *       preCommit: async ({ txnId, payload, db }) => {},          // optional, 3pc only
 *     },
 *   });
 *   await participant.start();   // resolves once listening and announced
 *   await participant.stop();
 */
export { TransactionParticipant } from './transaction-participant';
export { PARTICIPANT_LOG_TABLE } from './participant-log.repository';
export { THREE_PHASE_LOG_TABLE } from './three-phase-log.repository';
export { PAXOS_COMMIT_LOG_TABLE } from './paxos-commit-log.repository';
export type {
  LoggedRmState,
  ParticipantHandlers,
  ParticipantLogger,
  PrepareVerdict,
  TransactionContext,
  TransactionParticipantOptions,
} from './participant-sdk.types';
