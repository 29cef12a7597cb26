import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './app-config';

const base = { DATABASE_URL: 'postgres://u@localhost:5432/log', KAFKA_BROKERS: 'localhost:9092' };
const acceptor = { ...base, ACCEPTOR_DATABASE_URL: 'postgres://u@localhost:5432/acceptor_1', COORDINATOR_ID: 'c1', PAXOS_ACCEPTORS: 'c1,c2,c3' };

describe('Paxos Commit configuration', () => {
  it('is off without ACCEPTOR_DATABASE_URL', () => {
    expect(loadConfig(base).paxosCommit).toBeUndefined();
  });

  it('applies defaults: F = 1, faster variant on, acceptors in the order given', () => {
    expect(loadConfig(acceptor).paxosCommit).toEqual({
      acceptorDatabaseUrl: acceptor.ACCEPTOR_DATABASE_URL,
      f: 1,
      acceptors: ['c1', 'c2', 'c3'],
      heartbeatIntervalMs: 200,
      suspectAfterMs: 1000,
      retryIntervalMs: 1000,
      phase2bToRms: true,
    });
  });

  it('needs no acceptor list for a single acceptor (F = 0)', () => {
    expect(loadConfig({ ...acceptor, PAXOS_ACCEPTORS: undefined, PAXOS_F: '0' }).paxosCommit?.acceptors).toEqual(['c1']);
  });

  it.each([
    [{ ...base, PAXOS_ACCEPTORS: 'c1,c2,c3' }, /ACCEPTOR_DATABASE_URL is required when PAXOS_ACCEPTORS is set/],
    [{ ...acceptor, ACCEPTOR_DATABASE_URL: 'mysql://x' }, /ACCEPTOR_DATABASE_URL must be a postgres/],
    [{ ...acceptor, ACCEPTOR_DATABASE_URL: base.DATABASE_URL }, /ACCEPTOR_DATABASE_URL must name a database of this replica alone/],
    [{ ...acceptor, COORDINATOR_ID: undefined }, /COORDINATOR_ID is required with ACCEPTOR_DATABASE_URL/],
    [{ ...acceptor, COORDINATOR_ID: 'c9' }, /COORDINATOR_ID "c9" is not one of PAXOS_ACCEPTORS/],
    [{ ...acceptor, PAXOS_ACCEPTORS: undefined }, /PAXOS_ACCEPTORS is required/],
    [{ ...acceptor, PAXOS_ACCEPTORS: 'c1,c2' }, /PAXOS_ACCEPTORS must name 2F\+1 = 3 replicas/],
    [{ ...acceptor, PAXOS_ACCEPTORS: 'c1,c1,c2' }, /PAXOS_ACCEPTORS names a replica twice/],
    [{ ...acceptor, PAXOS_F: '-1' }, /PAXOS_F must be an integer/],
    [{ ...acceptor, PAXOS_SUSPECT_AFTER_MS: '300' }, /PAXOS_SUSPECT_AFTER_MS must be at least twice/],
    [{ ...acceptor, PAXOS_PHASE2B_TO_RMS: 'yes' }, /PAXOS_PHASE2B_TO_RMS must be true or false/],
  ])('fails fast naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrowError(ConfigError);
    expect(() => loadConfig(env)).toThrowError(message);
  });
});
