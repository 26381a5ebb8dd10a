/**
 * Who runs the farm during the benchmark. The harness driver stands in for the daemon: it applies the
 * plans itself and "detects" a lost node by a plain 1 s timeout after the cut. A daemon driver (real
 * `vigil daemon` per node namespace, heartbeat detection) implements the same interface.
 */
import { createFarmDaemons, type FarmDaemons } from '../test/helpers/farm-daemons.ts';
import type { FarmLan, FarmRuleRaw } from '../test/helpers/farm-lan.ts';

export interface FarmDriver {
  readonly name: string;
  /** the farm runs on `nodes` with `rules`, every node UP */
  start(nodes: readonly string[], rules: FarmRuleRaw[]): Promise<void>;
  /** called right after `node`'s link was cut; resolves once the driver has done its part */
  afterCut(node: string): Promise<void>;
  /** restores `node`'s link (in the order the driver needs) and waits until the farm is whole again */
  restore(node: string): Promise<void>;
  stop(): Promise<void>;
}

export class HarnessDriver implements FarmDriver {
  readonly name = 'harness (static plans, 1 s detection timeout)';
  private nodes: readonly string[] = [];

  constructor(private readonly farm: FarmLan, private readonly detectionMs = 1000) {}

  async start(nodes: readonly string[], rules: FarmRuleRaw[]): Promise<void> {
    this.nodes = nodes;
    await this.farm.install(rules, {}, nodes);
    await this.farm.converge(nodes);
  }

  async afterCut(node: string): Promise<void> {
    await new Promise((r) => setTimeout(r, this.detectionMs));
    await this.farm.converge(this.nodes.filter((n) => n !== node), { views: { [node]: [node] } });
  }

  async restore(node: string): Promise<void> {
    await this.farm.converge(this.nodes, { afterHandover: () => this.farm.lan.restore(node) });
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await this.farm.call(n, 'remove');
  }
}

/** Real `vigil daemon`s in the node namespaces: detection and plans are theirs (heartbeats, 1 s timeout). */
export class DaemonDriver implements FarmDriver {
  readonly name = 'vigil daemons (heartbeats 100 ms / timeout 1 s)';
  private daemons: FarmDaemons | undefined;
  private nodes: readonly string[] = [];
  private home = new Map<string, number>();

  constructor(private readonly farm: FarmLan) {}

  async start(nodes: readonly string[], rules: FarmRuleRaw[]): Promise<void> {
    this.nodes = nodes;
    for (const n of this.farm.nodes) await this.farm.call(n, 'remove');
    this.daemons = createFarmDaemons(this.farm, rules, { nodes });
    for (const n of nodes) this.daemons.start(n);
    await this.until(async () => {
      const counts = await Promise.all(nodes.map(async (n) => (await this.daemons!.kernel(n)).buckets.length));
      counts.forEach((c, i) => this.home.set(nodes[i], c));
      return counts.reduce((a, b) => a + b, 0) === 256 && counts.every((c) => c > 0);
    }, 60_000);
  }

  async afterCut(node: string): Promise<void> {
    // the daemons detect it themselves; wait until the survivors own everything
    const rest = this.nodes.filter((n) => n !== node);
    await this.until(async () => (await Promise.all(rest.map(async (n) => (await this.daemons!.kernel(n)).buckets.length))).reduce((a, b) => a + b, 0) === 256, 15_000);
  }

  async restore(node: string): Promise<void> {
    await this.farm.lan.restore(node);
    await this.until(async () => (await this.daemons!.kernel(node)).buckets.length === this.home.get(node), 20_000);
  }

  async stop(): Promise<void> {
    await this.daemons?.destroy();
    this.daemons = undefined;
  }

  private async until(ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`${this.name}: the farm did not settle in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
