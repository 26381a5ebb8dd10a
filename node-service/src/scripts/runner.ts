import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnDetached } from './spawn-detached.ts';
import type { ModuleState, ScriptName } from '../core/types.ts';

export interface ScriptRun {
  readonly script: ScriptName;
  /** 'graceful' on the first try of a stop script, 'force' on the second, 'start' for start scripts */
  readonly action: 'start' | 'graceful' | 'force';
  readonly ok: boolean;
  /** false when the module has no such script (nothing to run: counts as success) */
  readonly ran: boolean;
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  /** stdout and stderr interleaved, the last 8 KiB */
  readonly output: string;
}

export interface ScriptContext {
  readonly dir?: string;
  readonly module: string;
  readonly node: string;
  readonly state: ModuleState;
  readonly nextState: ModuleState;
  readonly timeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** forcestop: kill the script's process group at once */
  readonly signal?: AbortSignal;
}

const OUTPUT_LIMIT = 8192;

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs one script once. A script that hangs is killed (its whole process group) at its timeout. */
export async function runOnce(ctx: ScriptContext, script: ScriptName, action: ScriptRun['action'], timeoutMs: number): Promise<ScriptRun> {
  const path = ctx.dir ? join(ctx.dir, script) : undefined;
  if (!path || !(await executable(path))) {
    return { script, action, ok: true, ran: false, code: null, signal: null, timedOut: false, durationMs: 0, output: '' };
  }
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawnDetached([path, ctx.state, ctx.nextState, action], {
      cwd: ctx.dir,
      env: {
        ...process.env,
        ...ctx.extraEnv,
        VIGIL_MODULE: ctx.module,
        VIGIL_NODE: ctx.node,
        VIGIL_STATE: ctx.state,
        VIGIL_NEXT_STATE: ctx.nextState,
        VIGIL_ACTION: action,
      },
    });
    let output = '';
    const collect = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    ctx.signal?.addEventListener('abort', kill, { once: true });
    if (ctx.signal?.aborted) kill();
    const finish = (code: number | null, signal: string | null, err?: Error) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', kill);
      if (err) output += `\n${err.message}`;
      resolve({ script, action, ok: !timedOut && !err && code === 0, ran: true, code, signal, timedOut, durationMs: Date.now() - started, output });
    };
    child.once('error', (err) => finish(null, null, err));
    // 'close' waits for stdout/stderr too, but a daemonised child that keeps them open would make it
    // hang: resolve on exit, after a short grace for the pipes to drain.
    child.once('exit', (code, signal) => setTimeout(() => finish(code, signal), 20));
  });
}

/**
 * Start scripts run once. Stop scripts run 'graceful' first; if that fails or times out they run
 * again with 'force', and the stop goes on even if that fails too (a stop must always complete).
 */
export async function runScript(ctx: ScriptContext, script: ScriptName, stop: boolean): Promise<ScriptRun[]> {
  if (!stop) return [await runOnce(ctx, script, 'start', ctx.timeoutMs)];
  const first = await runOnce(ctx, script, 'graceful', ctx.stopTimeoutMs);
  if (first.ok || ctx.signal?.aborted) return [first];
  return [first, await runOnce(ctx, script, 'force', ctx.stopTimeoutMs)];
}
