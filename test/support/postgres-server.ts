/**
 * A Postgres server of a test's own, started with deploy/local/postgres.sh on a port and a
 * data directory of its own, so that the test can stop and restart it at will without
 * touching the server every other test shares. Stopped by the postmaster's pid at the end.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from './processes';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'deploy', 'local', 'postgres.sh');

export class PostgresServer {
  readonly dataDir: string;
  private readonly root: string;

  constructor(readonly port: number) {
    this.root = mkdtempSync(join(tmpdir(), `pg-${port}-`));
    // The script runs Postgres as the postgres OS user, which must reach the data directory.
    chmodSync(this.root, 0o755);
    this.dataDir = join(this.root, 'data');
  }

  /** The URL of its `postgres` database, for creating the test's databases. */
  get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts it (initdb on first use) and resolves once it accepts connections. */
  async start(): Promise<void> {
    await this.script('start');
  }

  /** `pg_ctl stop -m fast`: every connection is terminated, as in a server restart. */
  async stopGracefully(): Promise<void> {
    await this.script('stop');
  }

  /** The postmaster's pid, read from its data directory; undefined while it is not running. */
  pid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops it by pid (SIGINT is Postgres's fast shutdown), waits for it to exit and removes its files. */
  async destroy(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined && alive(pid)) {
      process.kill(pid, 'SIGINT');
      await waitUntil(`postgres (pid ${pid}) to exit`, async () => !alive(pid), 60_000, 100);
    }
    rmSync(this.root, { recursive: true, force: true });
  }

  private async script(command: 'start' | 'stop'): Promise<void> {
    // Without DATABASE_URL: the script treats a set one as an external server and starts nothing.
    const { DATABASE_URL: _shared, ...env } = process.env;
    await run('bash', [SCRIPT, command], { env: { ...env, PG_PORT: String(this.port), PG_DATA: this.dataDir }, timeout: 120_000 });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
