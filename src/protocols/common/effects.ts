/**
 * The vocabulary every protocol core speaks: a core is `step(state, input) -> { state, effects }`
 * and the effects below are the only way it touches the world.
 *
 * Durability rule (etcd's msgsAfterAppend): a driver carries out every `persist` effect of a
 * step, and waits until it is durable, before any `send` effect of the same step leaves the
 * process. `setTimer` and `decide` may run at any point after the persists. A core therefore
 * never needs to order its effects by hand beyond listing them.
 */
export type Decision = 'COMMIT' | 'ABORT';

export interface Persist<R> {
  readonly kind: 'persist';
  readonly record: R;
}

export interface Send<M> {
  readonly kind: 'send';
  readonly to: string;
  readonly message: M;
}

export interface SetTimer<T extends string = string> {
  readonly kind: 'setTimer';
  readonly timer: T;
  readonly afterMs: number;
}

export interface Decide {
  readonly kind: 'decide';
  readonly decision: Decision;
}

export type Effect<R, M, T extends string = string> = Persist<R> | Send<M> | SetTimer<T> | Decide;

export interface StepResult<S, E> {
  readonly state: S;
  readonly effects: readonly E[];
}

export const persist = <R>(record: R): Persist<R> => ({ kind: 'persist', record });
export const send = <M>(to: string, message: M): Send<M> => ({ kind: 'send', to, message });
export const setTimer = <T extends string>(timer: T, afterMs: number): SetTimer<T> => ({
  kind: 'setTimer',
  timer,
  afterMs,
});
export const decide = (decision: Decision): Decide => ({ kind: 'decide', decision });

/** Splits a step's effects in the order a driver must carry them out. */
export function orderForDurability<E extends { kind: string }>(
  effects: readonly E[],
): { persists: E[]; rest: E[] } {
  const persists: E[] = [];
  const rest: E[] = [];
  for (const effect of effects) (effect.kind === 'persist' ? persists : rest).push(effect);
  return { persists, rest };
}
