/**
 * Real processes for the end-to-end and fault tests: the compiled coordinator and example
 * services, started with their own environment, their output kept in .local/logs so a
 * failing test can be read afterwards, and killed with real signals.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root, whether this file runs from test/support or from dist/test/support. */
function repositoryRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

const ROOT = repositoryRoot(__dirname);
const LOG_DIR = join(ROOT, '.local', 'logs', 'tests');

export class ManagedProcess {
  private output = '';
  private readonly watchers: { pattern: RegExp; resolve: (match: RegExpMatchArray) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(join(LOG_DIR, `${name}.log`), { flags: 'a' });
    const onData = (chunk: Buffer): void => {
      log.write(chunk);
      this.output += chunk.toString('utf8');
      if (this.output.length > 1_000_000) this.output = this.output.slice(-500_000);
      for (const watcher of [...this.watchers]) {
        const match = this.output.match(watcher.pattern);
        if (match) {
          this.watchers.splice(this.watchers.indexOf(watcher), 1);
          watcher.resolve(match);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((done) => child.on('exit', (code, signal) => {
      log.end();
      done({ code, signal });
    }));
  }

  /** Resolves when the process has printed something matching `pattern` (now or later). */
  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const match = this.output.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolvePromise, reject) => {
      const fail = (why: string): void => reject(new Error(`${this.name} did not print ${pattern}: ${why}; last output:\n${this.output.slice(-3000)}`));
      const timer = setTimeout(() => fail(`not within ${timeoutMs} ms`), timeoutMs);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        fail(`it exited (code ${code}, signal ${signal})`);
      });
      this.watchers.push({ pattern, resolve: (m) => { clearTimeout(timer); resolvePromise(m); } });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }

  /** Graceful stop, with SIGKILL if it does not exit within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  recentOutput(): string {
    return this.output.slice(-4000);
  }
}

export function startNodeProcess(name: string, script: string, env: Record<string, string>): ManagedProcess {
  const child = spawn(process.execPath, ['--enable-source-maps', join(ROOT, 'dist', script)], {
    cwd: ROOT,
    env: { ...process.env, OTEL_SDK_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ManagedProcess(name, child);
}

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
