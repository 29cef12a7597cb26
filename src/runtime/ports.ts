/**
 * The ports every role runs on. Production binds them to Postgres, kafkajs and Node timers;
 * the simulator binds them to its own clock, network and disks, so the runtime and the
 * drivers above it are the same code in both.
 */

/** Monotonic time and timers. `now` never goes backwards and is never compared with another host's clock. */
export interface Clock {
  now(): number;
  setTimer(afterMs: number, fire: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

/** Outbound messages; `send` resolves once the transport has taken every message of the batch. */
export interface Transport<M> {
  send(messages: readonly M[]): Promise<void>;
}

/** What a role reports about itself; drivers pass their Nest logger or the SDK's. */
export interface RuntimeLogger {
  warn(message: string): void;
  error(message: string): void;
}

/** Node's monotonic clock and unref'd timers: a pending timer never keeps a process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(afterMs, fire) {
    const handle = setTimeout(fire, Math.max(0, afterMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
