import { ProtocolName } from '../transport/kafka/envelope';

/** A client's request for a new transaction, once the API has validated it. */
export interface CreateTransactionRequest {
  readonly protocol: ProtocolName;
  readonly participants: readonly { readonly name: string; readonly payload: unknown }[];
  readonly timeoutMs: number;
  readonly requestHash: string;
}
