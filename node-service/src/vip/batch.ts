import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log/logger.ts';

/**
 * A long-lived `ip -force -batch -`: on the failover path an address change is one line written to a
 * process that already runs, instead of a fork + exec of `ip` (100-200 ms on a loaded 2-core machine).
 *
 * `ip -batch` prints nothing on success, so each command is followed by a sentinel that always fails
 * (`link show dev <absent>`): its "Command failed -:N" line on stderr says the command before it is
 * done, and a "Command failed" for the command's own line number says it failed, with the message
 * printed just before. Any trouble (process gone, no answer in time) rejects, and the caller falls
 * back to running `ip` once.
 *
 * One helper serves every module of the daemon (shared()): 64 modules taking over at once write 64
 * lines to one process, which the kernel applies in well under a millisecond each, instead of
 * keeping 64 `ip` processes that each have to be scheduled on a loaded machine.
 */
export class IpBatch {
  private static readonly byArgv = new Map<string, IpBatch>();
  private users = 0;
  private proc: ChildProcess | undefined;
  private line = 0;
  private buf = '';
  private errText = '';
  private readonly pending = new Map<number, { cmdLine: number; failed?: string; resolve: () => void; reject: (e: Error) => void }>();

  constructor(private readonly argv: readonly string[], private readonly log: Logger, private readonly timeoutMs = 2000) {}

  /** The helper of this argv (namespace) for the whole process; each caller gives it back with release(). */
  static shared(argv: readonly string[], log: Logger): IpBatch {
    const key = argv.join('\0');
    let b = IpBatch.byArgv.get(key);
    if (!b) {
      b = new IpBatch(argv, log);
      IpBatch.byArgv.set(key, b);
    }
    b.users += 1;
    return b;
  }

  /** A user of a shared() helper is done with it: the last one stops it. */
  release(): void {
    if (--this.users > 0) return;
    const key = this.argv.join('\0');
    if (IpBatch.byArgv.get(key) === this) IpBatch.byArgv.delete(key);
    this.close();
  }

  run(args: readonly string[]): Promise<void> {
    const p = this.ensure();
    if (!p?.stdin?.writable) return Promise.reject(new Error('ip batch not running'));
    const cmdLine = ++this.line;
    const sentinel = ++this.line;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(sentinel);
        reject(new Error(`ip ${args.join(' ')}: no answer from ip -batch within ${this.timeoutMs} ms`));
        this.reset();
      }, this.timeoutMs);
      this.pending.set(sentinel, {
        cmdLine,
        resolve: () => { clearTimeout(t); resolve(); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      p.stdin!.write(`${args.join(' ')}\nlink show dev vigil-no-such-if\n`);
    });
  }

  close(): void {
    this.reset();
  }

  private ensure(): ChildProcess | undefined {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return this.proc;
    this.line = 0;
    this.buf = '';
    this.errText = '';
    const p = spawn(this.argv[0], this.argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    // a helper stopped by reset() exits later: that must not fail the commands of the one after it
    p.on('error', (e) => this.proc === p && this.fail(`ip batch: ${e.message}`));
    p.on('exit', () => this.proc === p && this.fail('ip batch exited'));
    p.stdin?.on('error', () => undefined);
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (d: string) => this.onStderr(d));
    // never keeps the daemon (or a test) alive by itself
    p.unref();
    (p.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (p.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    this.proc = p;
    return p;
  }

  private onStderr(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const l = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const m = /^Command failed -:(\d+)/.exec(l);
      if (!m) {
        this.errText += (this.errText ? ' ' : '') + l.trim();
        continue;
      }
      const n = Number(m[1]);
      const text = this.errText;
      this.errText = '';
      const done = this.pending.get(n);
      if (done) {
        this.pending.delete(n);
        if (done.failed !== undefined) done.reject(new Error(done.failed));
        else done.resolve();
        continue;
      }
      // the command's own line failed: remember it for its sentinel
      const owner = this.pending.get(n + 1);
      if (owner && owner.cmdLine === n) owner.failed = text || 'ip command failed';
    }
  }

  private fail(why: string): void {
    for (const p of this.pending.values()) p.reject(new Error(why));
    this.pending.clear();
    this.proc = undefined;
  }

  private reset(): void {
    const p = this.proc;
    this.proc = undefined;
    this.fail('ip batch reset');
    p?.kill('SIGKILL');
    this.log.debug('ip batch helper stopped');
  }
}
