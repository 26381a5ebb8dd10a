import type { ModuleConfig } from '../config/types.ts';
import type { Logger } from '../log/logger.ts';
import { VipManager } from '../vip/index.ts';
import { createWitness, type Witness } from '../witness/index.ts';
import { createChecker } from './index.ts';
import type { CheckResult } from './poll.ts';

/** The VIP, checker and witness adapters of one module, ready for the daemon's edge. */
export interface ModuleHealth {
  /** mirror modules with `vip:` entries (farm VIPs belong to the farm filter); undefined otherwise */
  readonly vip?: VipManager;
  /** undefined when the module lists no witness */
  readonly witness?: Witness;
  /** starts every configured checker; returns the function that stops them all */
  startCheckers(report: (r: CheckResult) => void): () => void;
}

/**
 * Builds a module's adapters from its validated config. Unnamed checkers are named `${type}${index}`
 * (index in the module's `checkers` list), the key the module runner uses to find a checker's
 * on_failure / max_restarts again.
 */
export function createModuleHealth(module: ModuleConfig, node: string, log: Logger): ModuleHealth {
  const vip = module.mode === 'mirror' && module.vip.length > 0
    ? new VipManager({ vips: module.vip, arp: module.arp, log: log.child({ part: 'vip' }) })
    : undefined;
  // A cut-off primary must learn that it reaches no witness, and step down, well within the grace
  // the secondary waits before taking over: each witness gets a third of it to answer.
  const witness = module.witness && module.witness.ping.length + module.witness.http.length > 0
    ? createWitness(module.witness, log.child({ part: 'witness' }), { timeout: Math.min(1000, Math.max(200, Math.floor(module.witness.grace / 3))) })
    : undefined;
  return {
    vip,
    witness,
    startCheckers: (report) => {
      const checkers = module.checkers.map((c, i) =>
        createChecker({ ...c, name: c.name ?? `${c.type}${i}` }, {
          log,
          vip,
          env: { ...process.env, VIGIL_MODULE: module.name, VIGIL_NODE: node },
        }),
      );
      for (const c of checkers) c.start(report);
      return () => {
        for (const c of checkers) c.stop();
      };
    },
  };
}
