/**
 * Simulated time for the production-code simulator. For one run, @sinonjs/fake-timers
 * replaces setTimeout, setInterval, Date and performance process-wide, so the timers that
 * the production runtime, the drivers and TakeoverService arm, and the clocks they read,
 * all follow the simulator's clock. The simulator schedules its own events (deliveries,
 * faults, client requests) on the same fake clock, so there is one ordered timeline: a step
 * fires the next timer, then lets every promise chain it started settle before the next one.
 * Math.random is replaced by a seeded stream too, because the runtime draws its retry jitter
 * from it. setImmediate, nextTick and queueMicrotask stay real: the drain below needs one
 * real macrotask turn, and nothing in the code under test uses them.
 */
import { Logger, LoggerService } from '@nestjs/common';
import * as FakeTimers from '@sinonjs/fake-timers';
import { Prng } from '../prng';

/** Wall-clock start of every run (2024-01-01), so timestamps in the log look like real ones. */
export const SIM_EPOCH_MS = Date.UTC(2024, 0, 1);

const realSetImmediate = setImmediate;

export interface SimClock {
  /** Milliseconds since the run began. */
  readonly now: () => number;
  /** Runs `fire` `afterMs` from now on the shared timeline; returns a cancel function. */
  readonly at: (afterMs: number, fire: () => void) => () => void;
  /** Fires the next due timer (production or simulator); false when none is armed. */
  readonly step: () => boolean;
  /** Lets every promise chain started so far settle (one real macrotask turn). */
  readonly drain: () => Promise<void>;
  readonly uninstall: () => void;
}

let installed = false;

/** Installs fake time and a seeded Math.random; `log` receives what Nest's loggers say. */
export function installSimTime(seed: number, log: (line: string) => void): SimClock {
  if (installed) throw new Error('simulated time is already installed: runs do not nest');
  installed = true;
  const clock = FakeTimers.install({
    now: SIM_EPOCH_MS,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance', 'hrtime'],
    loopLimit: 1_000_000_000,
  });
  const random = new Prng(seed ^ 0x7a11ce);
  const realRandom = Math.random;
  Math.random = () => random.next();
  const previousLogger: unknown = Reflect.get(Logger, 'staticInstanceRef');
  Logger.overrideLogger(sinkLogger(log));
  return {
    now: () => clock.now - SIM_EPOCH_MS,
    at: (afterMs, fire) => {
      const id = clock.setTimeout(fire, Math.max(0, afterMs));
      return () => clock.clearTimeout(id);
    },
    step: () => {
      if (clock.countTimers() === 0) return false;
      clock.next();
      return true;
    },
    drain: () => new Promise<void>((resolve) => realSetImmediate(resolve)),
    uninstall: () => {
      clock.uninstall();
      Math.random = realRandom;
      Logger.overrideLogger(previousLogger as LoggerService);
      installed = false;
    },
  };
}

function sinkLogger(log: (line: string) => void): LoggerService {
  const write =
    (level: string) =>
    (message: unknown, ...rest: unknown[]): void => {
      const context = rest.length > 0 ? String(rest[rest.length - 1]) : '';
      log(`${level} ${context ? `[${context}] ` : ''}${String(message)}`);
    };
  return { log: write('log'), warn: write('warn'), error: write('error'), debug: write('debug'), verbose: write('verbose') };
}
