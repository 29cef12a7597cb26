/**
 * The providers of Paxos Commit, listed once for the coordinator module. On a replica
 * without ACCEPTOR_DATABASE_URL they are inert: nothing connects, and the driver reports
 * itself disabled so that the protocol is not offered.
 */
import { AcceptorStore } from './acceptor-store';
import { AcceptorDriver } from './acceptor.driver';
import { FailureDetector } from './failure-detector';
import { LeaderDriver } from './leader.driver';
import { PaxosCommitLog } from './paxos-commit-log';
import { PaxosCommitDriver } from './paxos-commit.driver';
import { ReplicaChannel } from './replica-channel';

export const PAXOS_COMMIT_PROVIDERS = [AcceptorStore, AcceptorDriver, FailureDetector, PaxosCommitLog, LeaderDriver, PaxosCommitDriver, ReplicaChannel];
