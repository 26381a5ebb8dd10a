import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type LogRecord =
  | { time: string; kind: 'transition'; from: string; to: string; reason: string; phase: 'begin' | 'done' | 'failed'; detail?: string }
  | { time: string; kind: 'script'; script: string; action: string; ok: boolean; code: number | null; signal: string | null; timedOut: boolean; durationMs: number; output: string }
  | { time: string; kind: 'note'; level: string; msg: string };

type Body<T> = T extends unknown ? Omit<T, 'time'> : never;

const MAX_BYTES = 2 << 20;
const RING = 500;

/**
 * A module's recent transitions and script runs, for `vigil log`: kept in memory and appended to
 * `<state_dir>/<module>/events.jsonl` (rotated once at 2 MiB), so they survive a daemon restart.
 */
export class EventLog {
  private readonly ring: LogRecord[] = [];
  private readonly file: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'events.jsonl');
    try {
      const lines = readFileSync(this.file, 'utf8').trim().split('\n').slice(-RING);
      for (const l of lines) if (l) this.ring.push(JSON.parse(l) as LogRecord);
    } catch {
      /* no previous log */
    }
  }

  add(r: Body<LogRecord>): void {
    const rec = { time: new Date().toISOString(), ...r } as LogRecord;
    this.ring.push(rec);
    if (this.ring.length > RING) this.ring.shift();
    try {
      if ((statSync(this.file, { throwIfNoEntry: false })?.size ?? 0) > MAX_BYTES) renameSync(this.file, `${this.file}.1`);
      appendFileSync(this.file, `${JSON.stringify(rec)}\n`);
    } catch {
      /* the in-memory copy still serves vigil log */
    }
  }

  recent(n: number): LogRecord[] {
    return this.ring.slice(-n);
  }
}
