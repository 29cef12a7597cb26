/**
 * Lets an API call wait for a transaction's decision without polling the log: the driver
 * notifies here when it decides, and a waiter that times out simply returns.
 */
import { Injectable } from '@nestjs/common';
import { Decision } from '../protocols/common/effects';

type Waiter = (decision: Decision) => void;

@Injectable()
export class DecisionWaiters {
  private readonly waiters = new Map<string, Set<Waiter>>();

  wait(txnId: string, timeoutMs: number): Promise<Decision | undefined> {
    return new Promise((resolve) => {
      const set = this.waiters.get(txnId) ?? new Set<Waiter>();
      const waiter: Waiter = (decision) => {
        clearTimeout(timer);
        resolve(decision);
      };
      const timer = setTimeout(() => {
        set.delete(waiter);
        if (set.size === 0) this.waiters.delete(txnId);
        resolve(undefined);
      }, timeoutMs);
      set.add(waiter);
      this.waiters.set(txnId, set);
    });
  }

  notify(txnId: string, decision: Decision): void {
    const set = this.waiters.get(txnId);
    if (!set) return;
    this.waiters.delete(txnId);
    for (const waiter of set) waiter(decision);
  }
}
