/**
 * A clock that moves only when told to: the runtime's specs and the simulator drive time
 * with it, so every timer fires at a chosen, reproducible moment.
 */
import { Clock, Timer } from './ports';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fire: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private pending: Pending[] = [];

  now(): number {
    return this.time;
  }

  setTimer(afterMs: number, fire: () => void): Timer {
    const entry: Pending = { at: this.time + Math.max(0, afterMs), seq: this.seq++, fire, cancelled: false };
    this.pending.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }

  /** Timers still armed. */
  armed(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** When the next armed timer fires, if any. */
  nextAt(): number | undefined {
    const next = this.ordered()[0];
    return next?.at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.ordered()[0];
      if (!next || next.at > until) break;
      this.time = next.at;
      next.cancelled = true;
      this.pending = this.pending.filter((p) => p !== next);
      next.fire();
    }
    this.time = until;
  }

  private ordered(): Pending[] {
    this.pending = this.pending.filter((p) => !p.cancelled);
    return [...this.pending].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}
