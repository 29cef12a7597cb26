/**
 * How every participant driver (2pc, 3pc, Paxos Commit) calls the service's handlers. The
 * protocols differ in when a handler runs, not in how: each handler runs in a span under the
 * message that asked for it, and prepare runs behind a savepoint so that a NO vote leaves none
 * of its writes in the step's database transaction. Whatever prepare returns or throws is read
 * as a verdict, because a handler's mistake must become a NO vote rather than a stuck step,
 * with one exception: a throw that is the database's, not the service's (the connection went,
 * the server is shutting down, a deadlock or serialization failure), says nothing about the
 * work, so it fails the step and the runtime tries it again instead of aborting everyone.
 */
import { context } from '@opentelemetry/api';
import { Decision } from '../protocols/common/effects';
import { ATTR_TXN_DECISION, ATTR_TXN_ID, ATTR_TXN_PROTOCOL, inSpan } from '../telemetry/txn-tracing';
import { ParticipantHandlers, ParticipantLogger, PrepareVerdict, TransactionContext } from './participant-sdk.types';

export interface ServiceHandlersOptions {
  /** The participant's name, as spans report it. */
  readonly name: string;
  /** The protocol spans report: '2pc', '3pc' or 'paxos-commit'. */
  readonly protocol: string;
  readonly handlers: ParticipantHandlers;
  readonly logger: ParticipantLogger;
  /** The protocol's own word for a no vote in the log ("NO", or Paxos Commit's "Aborted"), so operators read the paper's terms. */
  readonly noVote: string;
}

type HandlerName = 'prepare' | 'preCommit' | 'commit' | 'abort';

export class ServiceHandlers {
  constructor(private readonly options: ServiceHandlersOptions) {}

  /** Runs prepare inside `ctx.db`'s transaction and returns its vote; a NO rolls back what it wrote. */
  async runPrepare(ctx: TransactionContext): Promise<PrepareVerdict> {
    await ctx.db.query('SAVEPOINT participant_prepare');
    let verdict: PrepareVerdict;
    try {
      verdict = normaliseVerdict(await this.traced('prepare', ctx, () => this.options.handlers.prepare(ctx)));
    } catch (error) {
      if (isTransientDatabaseError(error)) throw error;
      verdict = { vote: 'NO', reason: errorMessage(error) };
    }
    // A NO vote leaves no trace of the handler's work: abort is never called for it.
    await ctx.db.query(verdict.vote === 'YES' ? 'RELEASE SAVEPOINT participant_prepare' : 'ROLLBACK TO SAVEPOINT participant_prepare');
    if (verdict.vote === 'NO') this.options.logger.info(`transaction ${ctx.txnId}: voting ${this.options.noVote}: ${verdict.reason}`);
    return verdict;
  }

  /** The service's optional pre-commit hook; a service without one has nothing to do here. */
  async runPreCommit(ctx: TransactionContext): Promise<void> {
    const { handlers } = this.options;
    if (handlers.preCommit) await this.traced('preCommit', ctx, () => handlers.preCommit!(ctx));
  }

  async runDecision(decision: Decision, ctx: TransactionContext): Promise<void> {
    if (decision === 'COMMIT') await this.traced('commit', ctx, () => this.options.handlers.commit(ctx));
    else await this.traced('abort', ctx, () => this.options.handlers.abort(ctx));
  }

  /** Each handler runs in a span under the message that asked for it (context from the Kafka headers). */
  private traced<T>(handler: HandlerName, ctx: TransactionContext, work: () => Promise<T>): Promise<T> {
    const attributes = {
      [ATTR_TXN_ID]: ctx.txnId,
      [ATTR_TXN_PROTOCOL]: this.options.protocol,
      'txn.participant': this.options.name,
      ...(handler === 'commit' || handler === 'abort' ? { [ATTR_TXN_DECISION]: handler === 'commit' ? 'COMMIT' : 'ABORT' } : {}),
    };
    return inSpan(`participant ${handler}`, context.active(), attributes, work);
  }
}

function normaliseVerdict(verdict: unknown): PrepareVerdict {
  const value = verdict as Partial<{ vote: unknown; reason: unknown }> | null | undefined;
  if (value?.vote === 'YES') return { vote: 'YES' };
  if (value?.vote === 'NO') return { vote: 'NO', reason: typeof value.reason === 'string' && value.reason ? value.reason : 'no reason given' };
  return { vote: 'NO', reason: 'prepare handler returned no verdict' };
}

/**
 * SQLSTATEs that say the database could not do the work right now, whatever the work was:
 * connection exceptions (08), insufficient resources (53), operator intervention such as a
 * shutdown (57P01-57P03), serialization failure and deadlock (40001, 40P01).
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || code.length !== 5) return false;
  return code.startsWith('08') || code.startsWith('53') || ['57P01', '57P02', '57P03', '40001', '40P01'].includes(code);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
