/**
 * npm run sim:prod -- --seeds <n> --steps <n> [--seed <n>] [--first-seed <n>]
 *                     [--faults full|liveness|writes] [--mutant <name>] [--expect-violations]
 *
 * Runs the production 2PC coordinator code (drivers, runtime, takeover, partition ownership)
 * under simulated time, storage and Kafka. Prints one summary row and `violations: <N>`;
 * `--seed` replays one run and prints its transcript first. Exits non-zero when violations
 * were found, or, with `--expect-violations` (for mutants), when none were.
 */
import { MUTANTS, Mutant } from './mutants';
import { ProdRunResult, runProdSeed, sweepProd } from './prod-run';
import { DEFAULT_FAULTS, FAILING_WRITES_ONLY, LIVENESS_FAULTS, ProdFaults } from './prod-world';

const PROFILES: Record<string, ProdFaults> = { full: DEFAULT_FAULTS, liveness: LIVENESS_FAULTS, writes: FAILING_WRITES_ONLY };

interface Args {
  seeds: number;
  steps: number;
  firstSeed: number;
  seed?: number;
  profile: string;
  mutant?: Mutant;
  expectViolations: boolean;
}

function parse(argv: readonly string[]): Args {
  const args: Args = { seeds: 20, steps: 3000, firstSeed: 1, profile: 'full', expectViolations: false };
  const number = (i: number, name: string): number => {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} needs a non-negative integer, got ${argv[i + 1]}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
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
      case '--faults': {
        const p = argv[++i];
        if (!(p in PROFILES)) throw new Error(`--faults must be one of ${Object.keys(PROFILES).join(', ')}, got ${p}`);
        args.profile = p;
        break;
      }
      case '--mutant': {
        const m = argv[++i];
        if (!(MUTANTS as readonly string[]).includes(m)) throw new Error(`--mutant must be one of ${MUTANTS.join(', ')}, got ${m}`);
        args.mutant = m as Mutant;
        break;
      }
      case '--expect-violations':
        args.expectViolations = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return args;
}

const columns = ['protocol', 'seeds', 'steps', 'transactions', 'committed', 'aborted', 'violations', 'steps/s'];
const widths = [10, 8, 12, 14, 11, 9, 12, 10];
const row = (cells: readonly (string | number)[]): string => cells.map((c, i) => String(c).padEnd(widths[i])).join('').trimEnd();

function replay(seed: number, args: Args): string {
  return `npm run sim:prod -- --seed ${seed} --steps ${args.steps} --faults ${args.profile}${args.mutant ? ` --mutant ${args.mutant}` : ''}`;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  const options = { steps: args.steps, faults: PROFILES[args.profile], mutant: args.mutant };
  const started = performance.now();
  let summary;
  if (args.seed !== undefined) {
    const result: ProdRunResult = await runProdSeed(args.seed, { ...options, transcript: true });
    console.log(result.transcript.join('\n'));
    console.log(`figures: ${JSON.stringify(result.figures)}`);
    summary = { ...result, seeds: 1, wallMs: performance.now() - started, failures: result.violations.map((violation) => ({ seed: result.seed, violation })) };
  } else {
    summary = await sweepProd(args.firstSeed, args.seeds, options);
    console.log(`figures: ${JSON.stringify(summary.figures)}`);
  }
  for (const { seed, violation } of summary.failures.slice(0, 20)) {
    console.log(`violation: 2pc seed ${seed} ${violation.invariant} ${violation.txnId} at ${violation.at} ms: ${violation.detail}`);
    console.log(`  replay: ${replay(seed, args)}`);
  }
  if (summary.failures.length > 20) console.log(`  ... and ${summary.failures.length - 20} more`);
  const byName = new Map<string, number>();
  for (const { violation } of summary.failures) byName.set(violation.invariant, (byName.get(violation.invariant) ?? 0) + 1);
  const stepsPerSecond = Math.round(summary.steps / (summary.wallMs / 1000));
  console.log(row(columns));
  console.log(row(['2pc', summary.seeds, summary.steps, summary.transactions, summary.committed, summary.aborted, summary.failures.length, stepsPerSecond]));
  if (byName.size > 0) {
    const seeds = new Set(summary.failures.map((f) => f.seed)).size;
    console.log(`violations by invariant: ${[...byName].map(([k, v]) => `${k}=${v}`).join(' ')} (in ${seeds} seeds)`);
  }
  console.log(`faults: ${args.profile}${args.mutant ? `; mutant: ${args.mutant}` : ''}; wall time: ${(summary.wallMs / 1000).toFixed(1)}s`);
  console.log(`violations: ${summary.failures.length}`);
  if (args.expectViolations) return summary.failures.length > 0 ? 0 : 1;
  return summary.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  },
);
