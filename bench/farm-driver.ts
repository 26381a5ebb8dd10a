/**
 * Who runs the farm during the benchmark. The harness driver stands in for the daemon: it applies the
 * plans itself and "detects" a lost node by a plain 1 s timeout after the cut. A daemon driver (real
 * `vigil daemon` per node namespace, heartbeat detection) implements the same interface.
 */
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
