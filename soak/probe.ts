import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lan } from '../node-service/src/demo/lan.ts';

export interface Reply {
  readonly status: number;
  readonly body: string;
}

/**
 * probe.mjs in the client's namespace: the host namespace cannot reach the LAN, and one process
 * polling ready.txt every 20 ms costs far less than a curl per sample.
 */
export class Probe {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiters = new Map<number, (r: Reply) => void>();
  rounds = 0;

  constructor(lan: Lan, host: string, readyUrls: readonly string[], onReady: (t: number, statuses: number[]) => void) {
    this.proc = lan.spawn(host, [process.execPath, join(import.meta.dirname, 'probe.mjs'), ...readyUrls], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { k: string; id?: number; t?: number; r?: number[]; n?: number; status?: number; body?: string };
      if (m.k === 'ready') onReady(m.t!, m.r!);
      else if (m.k === 'rounds') this.rounds = m.n!;
      else if (m.k === 'reply') {
        this.waiters.get(m.id!)?.({ status: m.status!, body: m.body! });
        this.waiters.delete(m.id!);
      }
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  request(url: string, opts: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, url, ...opts })}\n`);
    });
  }

  async json<T>(url: string, opts: Parameters<Probe['request']>[1] = {}): Promise<T | undefined> {
    const r = await this.request(url, opts);
    if (r.status !== 200) return undefined;
    try {
      return JSON.parse(r.body) as T;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.proc.stdin!.end();
    this.proc.kill('SIGKILL');
  }
}
