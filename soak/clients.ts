import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Ack } from './checker.ts';
import { APP_PORT, type SoakTopology } from './topology.ts';

/** slots the writer's renames cycle through: the replicated tree stays bounded over an hour */
export const SLOTS = 64;

/**
 * writer.mjs in the client's namespace: writes through the VIP and tells what the application
 * acknowledged as durable. `acks` only grows; `requests` counts every attempt. Every answer is also
 * kept in writer.log beside the node logs, to tell afterwards what a lost record's neighbours got.
 */
export class Writer {
  readonly acks: Ack[] = [];
  requests = 0;
  private readonly proc: ChildProcess;

  constructor(t: SoakTopology, intervalMs: number) {
    this.proc = t.c.lan.spawn('client', [process.execPath, join(import.meta.dirname, 'writer.mjs'), t.vip, String(APP_PORT), String(intervalMs), String(SLOTS)]);
    const log = join(t.c.dir, 'writer.log');
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      appendFileSync(log, `${l}\n`);
      const r = JSON.parse(l) as Ack & { ok: boolean };
      this.requests += 1;
      if (r.ok) this.acks.push({ seq: r.seq, op: r.op, slot: r.slot, node: r.node, end: r.end });
    });
  }

  stop(): void {
    this.proc.kill('SIGKILL');
  }
}
