import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

/**
 * Starts argv in its own process group, its output piped. The program and the working directory may
 * live inside a replicated directory, i.e. in a FUSE view this very process serves: libuv's spawn
 * blocks until the child has exec'd, and a child that changes into or execs from the view would wait
 * on this process for ever. So the child execs /bin/sh first (outside any view), and the shell does
 * the cd and the exec once the event loop is free again to answer.
 */
export function spawnDetached(argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcessByStdio<null, Readable, Readable> {
  const [file, ...args] = argv;
  const script = opts.cwd ? 'cd -- "$1" && shift && exec "$@"' : 'shift; exec "$@"';
  return spawn('/bin/sh', ['-c', script, 'vigil-exec', opts.cwd ?? '', file, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
  });
}
