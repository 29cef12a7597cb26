/**
 * npm run sim -- --protocol <2pc|3pc|paxos-commit|all> --seeds <n> --steps <n> [--partitions]
 *                [--seed <n>] [--first-seed <n>] [--expect-violations]
 *
 * Prints one summary row per protocol and ends with `violations: <N>`. `--seed` replays one
 * run and prints its transcript. Exits non-zero when violations were found, or, with
 * `--expect-violations`, when none were.
 */
import { PROTOCOLS, ProtocolName } from './adapter';
import { SweepSummary, runSeed, sweep } from './run';

interface Args {
  protocols: ProtocolName[];
  seeds: number;
  steps: number;
  partitions: boolean;
  seed?: number;
  firstSeed: number;
  expectViolations: boolean;
}

function parse(argv: readonly string[]): Args {
  const args: Args = { protocols: [...PROTOCOLS], seeds: 100, steps: 2000, partitions: false, firstSeed: 1, expectViolations: false };
  const number = (i: number, name: string): number => {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} needs a non-negative integer, got ${argv[i + 1]}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--protocol': {
        const p = argv[++i];
        if (p === 'all') args.protocols = [...PROTOCOLS];
        else if ((PROTOCOLS as readonly string[]).includes(p)) args.protocols = [p as ProtocolName];
        else throw new Error(`--protocol must be one of ${PROTOCOLS.join(', ')} or all, got ${p}`);
        break;
      }
      case '--seeds':
        args.seeds = number(i++, '--seeds');
        break;
      case '--steps':
        args.steps = number(i++, '--steps');
        break;
      case '--seed':
        args.seed = number(i++, '--seed');
        break;
      case '--first-seed':
        args.firstSeed = number(i++, '--first-seed');
        break;
      case '--partitions':
        args.partitions = true;
        break;
      case '--expect-violations':
        args.expectViolations = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return args;
}

const columns = ['protocol', 'seeds', 'steps', 'transactions', 'committed', 'aborted', 'blocked', 'violations'];
const widths = [14, 8, 12, 14, 11, 9, 9, 10];
const row = (cells: readonly (string | number)[]): string => cells.map((c, i) => String(c).padEnd(widths[i])).join('').trimEnd();

function replayCommand(protocol: ProtocolName, seed: number, args: Args): string {
  return `npm run sim -- --protocol ${protocol} --seed ${seed} --steps ${args.steps}${args.partitions ? ' --partitions' : ''}`;
}

function main(): number {
  const args = parse(process.argv.slice(2));
  const started = Date.now();
  const summaries: SweepSummary[] = [];
  for (const protocol of args.protocols) {
    if (args.seed !== undefined) {
      const result = runSeed(protocol, args.seed, { steps: args.steps, partitions: args.partitions, transcript: true });
      console.log(result.transcript.join('\n'));
      summaries.push({ ...result, seeds: 1, failures: result.violations.map((violation) => ({ seed: args.seed as number, violation })) });
    } else {
      summaries.push(sweep(protocol, args.firstSeed, args.seeds, { steps: args.steps, partitions: args.partitions }));
    }
  }
  let violations = 0;
  for (const s of summaries) {
    for (const { seed, violation } of s.failures.slice(0, 20)) {
      console.log(`violation: ${s.protocol} seed ${seed} ${violation.invariant} ${violation.txnId}: ${violation.detail}`);
      console.log(`  replay: ${replayCommand(s.protocol, seed, args)}`);
    }
    if (s.failures.length > 20) console.log(`  ... and ${s.failures.length - 20} more for ${s.protocol}`);
    violations += s.failures.length;
  }
  console.log(row(columns));
  for (const s of summaries) console.log(row([s.protocol, s.seeds, s.steps, s.transactions, s.committed, s.aborted, s.blocked, s.failures.length]));
  for (const s of summaries.filter((x) => x.failures.length > 0)) {
    const byName = new Map<string, number>();
    for (const { violation } of s.failures) byName.set(violation.invariant, (byName.get(violation.invariant) ?? 0) + 1);
    const seeds = new Set(s.failures.map((f) => f.seed)).size;
    console.log(`${s.protocol} violations by invariant: ${[...byName].map(([k, v]) => `${k}=${v}`).join(' ')} (in ${seeds} seeds)`);
  }
  console.log(`partitions: ${args.partitions ? 'on' : 'off'}; wall time: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  console.log(`violations: ${violations}`);
  if (args.expectViolations) return violations > 0 ? 0 : 1;
  return violations > 0 ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
}
