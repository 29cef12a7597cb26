import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock';
import { BadInput, Role, StepOutcome, TransactionRuntime } from './transaction-runtime';

type Input = { readonly type: 'go' | 'tick' | 'bad' };
interface Txn {
  steps: string[];
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function harness(run: Role<Txn, Input, string>['run'], load?: Role<Txn, Input, string>['load']) {
  const clock = new ManualClock();
  const sent: string[][] = [];
  const warnings: string[] = [];
  let sendFailures = 0;
  const transport = {
    send: async (messages: readonly string[]): Promise<void> => {
      if (sendFailures > 0) {
        sendFailures--;
        throw new Error('broker down');
      }
      sent.push([...messages]);
    },
  };
  const runtime = new TransactionRuntime<Txn, Input, string>(
    { run, load },
    { name: 'test', transport, clock, logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) }, random: () => 0.5 },
  );
  return { runtime, clock, sent, warnings, failSends: (n: number) => (sendFailures = n) };
}

describe('TransactionRuntime', () => {
  it('sends a step only after its persist is durable (the durability rule)', async () => {
    const durable = deferred();
    const { runtime, sent } = harness(async (txn) => {
      await durable.promise;
      txn.steps.push('persisted');
      return { messages: ['PREPARE'] };
    });
    runtime.start('t1', { steps: [] });
    const submitted = runtime.submit('t1', { type: 'go' });
    await flush();
    expect(sent).toEqual([]);
    durable.resolve();
    await submitted;
    expect(sent).toEqual([['PREPARE']]);
  });

  it('feeds one transaction one input at a time, and runs different transactions concurrently', async () => {
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const order: string[] = [];
    const { runtime } = harness(async (txn, input, txnId) => {
      order.push(`${txnId}:${input.type}:start`);
      const gate = deferred();
      gates.set(`${txnId}:${input.type}`, gate);
      await gate.promise;
      order.push(`${txnId}:${input.type}:end`);
      return undefined;
    });
    runtime.start('a', { steps: [] });
    runtime.start('b', { steps: [] });
    const a1 = runtime.submit('a', { type: 'go' });
    const a2 = runtime.submit('a', { type: 'tick' });
    const b1 = runtime.submit('b', { type: 'go' });
    await flush();
    expect(order).toEqual(['a:go:start', 'b:go:start']);
    gates.get('a:go')!.resolve();
    await flush();
    expect(order).toEqual(['a:go:start', 'b:go:start', 'a:go:end', 'a:tick:start']);
    gates.get('a:tick')!.resolve();
    gates.get('b:go')!.resolve();
    await Promise.all([a1, a2, b1]);
  });

  it('retries a failed step with backoff until it succeeds, and never only logs it', async () => {
    let failures = 2;
    const { runtime, clock, sent, warnings } = harness(async () => {
      if (failures-- > 0) throw new Error('connection terminated');
      return { messages: ['VOTE'] };
    });
    runtime.start('t1', { steps: [] });
    expect(await runtime.submit('t1', { type: 'go' })).toEqual({ status: 'retrying' });
    expect(warnings[0]).toMatch(/go failed \(attempt 1\), again in 38 ms: connection terminated/);
    clock.advance(38);
    await flush();
    expect(sent).toEqual([]);
    expect(warnings[1]).toMatch(/attempt 2\), again in 75 ms/);
    clock.advance(75);
    await flush();
    expect(sent).toEqual([['VOTE']]);
  });

  it('stops retrying once the transaction leaves this process', async () => {
    let runs = 0;
    const { runtime, clock } = harness(async () => {
      runs++;
      throw new Error('down');
    });
    runtime.start('t1', { steps: [] });
    await runtime.submit('t1', { type: 'go' });
    runtime.finish('t1');
    clock.advance(60_000);
    await flush();
    expect(runs).toBe(1);
    expect(clock.armed()).toBe(0);
  });

  it('refuses a bad input without retrying it, so the edge can dead-letter it', async () => {
    let runs = 0;
    const { runtime, clock } = harness(async () => {
      runs++;
      throw new BadInput('txnId is not a UUID');
    });
    runtime.start('t1', { steps: [] });
    expect(await runtime.submit('t1', { type: 'bad' })).toEqual({ status: 'bad', reason: 'txnId is not a UUID' });
    clock.advance(60_000);
    await flush();
    expect(runs).toBe(1);
  });

  it('retries a failed send until the transport takes it, without holding the transaction', async () => {
    const { runtime, clock, sent, failSends } = harness(async (_txn, input) => ({ messages: [input.type] }) as StepOutcome<Input, string>);
    runtime.start('t1', { steps: [] });
    failSends(2);
    expect(await runtime.submit('t1', { type: 'go' })).toEqual({ status: 'done' });
    expect(await runtime.submit('t1', { type: 'tick' })).toEqual({ status: 'done' });
    expect(sent).toEqual([]);
    clock.advance(10_000);
    await flush();
    expect(sent.flat().sort()).toEqual(['go', 'tick']);
  });

  it('arms timers from a step and feeds their input back; a newer timer of the same name replaces it', async () => {
    const seen: string[] = [];
    const { runtime, clock } = harness(async (_txn, input) => {
      seen.push(input.type);
      return input.type === 'go' ? { timers: [{ name: 'resend', afterMs: 100, input: { type: 'tick' } }] } : undefined;
    });
    runtime.start('t1', { steps: [] });
    await runtime.submit('t1', { type: 'go' });
    await runtime.submit('t1', { type: 'go' });
    clock.advance(100);
    await flush();
    expect(seen).toEqual(['go', 'go', 'tick']);
    expect(clock.armed()).toBe(0);
  });

  it('restores a transaction it does not hold from the log, and ignores one the log does not know', async () => {
    const { runtime } = harness(
      async (txn, input) => {
        txn.steps.push(input.type);
        return undefined;
      },
      async (txnId) => (txnId === 'known' ? { steps: ['restored'] } : undefined),
    );
    expect(await runtime.submit('unknown', { type: 'go' })).toEqual({ status: 'ignored' });
    expect(await runtime.submit('known', { type: 'go' })).toEqual({ status: 'done' });
    expect(runtime.get('known')?.steps).toEqual(['restored', 'go']);
  });

  it('finishes a transaction whose step says so, after its messages are out', async () => {
    const finished: string[] = [];
    const clock = new ManualClock();
    const sent: string[] = [];
    const runtime = new TransactionRuntime<Txn, Input, string>(
      { run: async () => ({ messages: ['ACK'], finished: true }), onFinish: (_t, id) => finished.push(`${id} after ${sent.join(',')}`) },
      { name: 'test', transport: { send: async (m) => void sent.push(...m) }, clock, logger: { warn: () => undefined, error: () => undefined } },
    );
    runtime.start('t1', { steps: [] });
    await runtime.submit('t1', { type: 'go' });
    expect(runtime.has('t1')).toBe(false);
    expect(finished).toEqual(['t1 after ACK']);
  });
});
