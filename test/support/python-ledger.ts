/**
 * The Python participant of examples/python-participant (a ledger on SQLite, written from
 * docs/protocol.md alone) as a process the end-to-end tests start, kill and inspect. It
 * joins the cluster's topics under the name `ledger` and refuses amounts over its limit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Cluster } from './cluster';
import { kafkaBrokers } from './infra';
import { ManagedProcess } from './processes';

const ROOT = resolve(__dirname, '..', '..');
const PARTICIPANT_DIR = join(ROOT, 'examples', 'python-participant');
const PYTHON = join(ROOT, '.local', 'py-participant-venv', 'bin', 'python');
const SCRIPT = join(PARTICIPANT_DIR, 'participant.py');

export const LEDGER_NAME = 'ledger';
export const LEDGER_LIMIT = 1000;

export class PythonLedger {
  /** The running process, or the last one started. */
  process: ManagedProcess | undefined;
  private workDir = '';
  private starts = 0;

  /** `label` tells this file's ledger processes apart in the test output. */
  constructor(
    private readonly cluster: Cluster,
    private readonly label: string,
  ) {}

  /** Makes the virtualenv (idempotent, and fast when it exists) and a fresh directory for the ledger's SQLite file. */
  setup(): void {
    execFileSync('bash', [join(PARTICIPANT_DIR, 'setup.sh')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    this.workDir = mkdtempSync(join(tmpdir(), `py-participant-${this.label}-`));
  }

  /** Starts the participant and waits until it consumes, has announced, and the coordinator lists it live. */
  async start(): Promise<ManagedProcess> {
    const child = spawn(PYTHON, ['-u', SCRIPT], { cwd: ROOT, env: { ...process.env, PYTHONUNBUFFERED: '1', ...this.env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = new ManagedProcess(`${this.cluster.prefix}-${LEDGER_NAME}-${this.label}-${this.starts++}`, child);
    this.process = started;
    await started.waitForOutput(new RegExp(`^${LEDGER_NAME} ready$`, 'm'), 60_000);
    await this.cluster.waitForLive(LEDGER_NAME);
    return started;
  }

  /** The participant's SQLite state, read through its own `--dump` mode. */
  dump<T>(): T {
    const out = execFileSync(PYTHON, [SCRIPT, '--dump'], { cwd: ROOT, env: { ...process.env, ...this.env() }, encoding: 'utf8' });
    return JSON.parse(out) as T;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    if (this.workDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  private env(): Record<string, string> {
    return {
      PARTICIPANT_NAME: LEDGER_NAME,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      KAFKA_TOPIC_PREFIX: this.cluster.prefix,
      LEDGER_DB: join(this.workDir, 'ledger.db'),
      LEDGER_LIMIT: String(LEDGER_LIMIT),
      ANNOUNCE_INTERVAL_MS: '500',
      QUERY_INTERVAL_MS: '500',
      KAFKA_SESSION_TIMEOUT_MS: '3000',
    };
  }
}
