import type { ModuleConfig } from '../config/types.ts';

type Asker = { reachable(): Promise<boolean> };

/**
 * One witness question in flight per witness list for the whole daemon. When a node dies, every
 * module it shared with this one loses its peer within a few ticks and asks the witnesses at once:
 * 64 modules meant 64 `ping` processes a second, each a fork() of a daemon holding hundreds of MiB
 * (about 40 ms of event loop each on a loaded machine), which delayed every takeover by seconds.
 *
 * A module that asks while another module's question is in flight takes its answer. That answer is
 * as good as its own would be: the question is younger than the witness timeout (under a second),
 * its "reachable" is a reply that arrived after the module asked or within that question's lifetime,
 * and its "unreachable" is a silence that covers the module's own question's window.
 */
export class SharedWitnesses {
  private readonly inFlight = new Map<string, Promise<boolean>>();

  /** the module's witness, asking through the shared questions of the modules with the same list */
  share(module: ModuleConfig, witness: Asker): Asker {
    const w = module.witness;
    const key = JSON.stringify({ ping: [...(w?.ping ?? [])].sort(), http: [...(w?.http ?? [])].sort(), grace: w?.grace });
    return {
      reachable: () => {
        let q = this.inFlight.get(key);
        if (!q) {
          q = witness.reachable().finally(() => this.inFlight.delete(key));
          this.inFlight.set(key, q);
        }
        return q;
      },
    };
  }
}
