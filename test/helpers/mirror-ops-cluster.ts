import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { NsCluster } from '../../node-service/src/demo/ns-cluster.ts';
import type { MirrorPlan } from '../../node-service/src/mirror/verify.ts';

const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/vigil.mjs');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A mirror pair of real daemons (NsCluster: node1 and node2, each in its own network and mount
 * namespace) whose replicated directory is `${privatePath}/data`, with what the resync-control and
 * verify tests do to it: run `vigil` on a node, run a shell inside a node's mount namespace (through
 * its view), read a node's backing directory from the host, read a node's replication plan.
 */
export class MirrorOpsCluster {
  private constructor(
    readonly c: NsCluster,
    readonly privatePath: string,
  ) {}

  static async create(o: { prefix: string; subnet: string; privatePath: string; replication: Record<string, unknown> }): Promise<MirrorOpsCluster> {
    const c = await NsCluster.create({
      prefix: o.prefix,
      subnet: o.subnet,
      privatePath: o.privatePath,
      module: { name: o.prefix, default_primary: 'node1', heartbeat: { pulse: '200ms', timeout: '1500ms' }, replication: o.replication as never },
    });
    return new MirrorOpsCluster(c, o.privatePath);
  }

  get module(): string {
    return this.c.moduleName;
  }

  get view(): string {
    return join(this.privatePath, 'data');
  }

  /** the node's backing directory, as the host sees it */
  backing(node: string): string {
    return join(this.c.node(node).root, 'private', '.data.vigil-data');
  }

  /** `vigil ARGS --config cluster.yaml` in the node's network namespace */
  vigil(node: string, args: string[], timeoutMs = 60_000): Promise<CliRun & { ms: number }> {
    const t0 = Date.now();
    return new Promise((done) =>
      execFile('ip', ['netns', 'exec', this.c.lan.ns(node), process.execPath, BIN, ...args, '--config', this.c.configFile], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        done({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr, ms: Date.now() - t0 }),
      ),
    );
  }

  /** a shell script inside the node's mount namespace: it sees the node's view of the replicated directory */
  inside(node: string, script: string, timeoutMs = 120_000): Promise<string> {
    const pid = this.c.node(node).proc?.pid;
    if (!pid) throw new Error(`${node}: daemon not running`);
    return new Promise((done, fail) =>
      execFile('nsenter', ['-t', String(pid), '-m', '--', 'sh', '-ec', script], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? fail(new Error(`${node}: ${script.slice(0, 80)}: ${stderr || err.message}`)) : done(stdout))),
    );
  }

  async plan(node: string): Promise<MirrorPlan> {
    const r = await this.c.get(node, `http://${this.c.node(node).addr}:9010/api/v1/modules/${this.module}/mirror/plan`, { authorization: `Bearer ${this.c.token}` });
    if (r?.status !== 200) throw new Error(`${node}: plan: ${r?.status} ${r?.body}`);
    return JSON.parse(r.body) as MirrorPlan;
  }

  /** the file bytes the running resync has sent so far (undefined when none runs) */
  async resyncDone(node: string): Promise<number | undefined> {
    const s = await this.c.status(node);
    return (s?.resync as { bytesDone?: number } | undefined)?.bytesDone;
  }

  destroy(): Promise<void> {
    return this.c.destroy({ keepDir: process.env.VIGIL_KEEP === '1' });
  }
}
