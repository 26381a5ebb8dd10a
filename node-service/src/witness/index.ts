import type { Logger } from '../log/logger.ts';
import { pingProbe } from '../checkers/probes.ts';

/** The module's `witness` block after config loading (durations in ms). */
export interface WitnessConfig {
  readonly ping: readonly string[];
  readonly http: readonly string[];
  /** used by the state machine (how long to keep asking before deciding), not here */
  readonly grace?: number;
}

export interface WitnessAnswer {
  readonly reachable: boolean;
  /** the witness that answered first ("ping 198.18.4.9", "http http://…"), when reachable */
  readonly by?: string;
  /** why each witness did not answer, when none did */
  readonly reasons: readonly string[];
  readonly ms: number;
}

export interface Witness {
  /** false when the config lists no witness: then reachable() is always true (nothing to ask) */
  readonly configured: boolean;
  /** Asks every witness at once; true as soon as one ping answers or one HTTP GET returns 2xx. */
  reachable(): Promise<boolean>;
  /** The same with the details, for the log and the state's reason sentence. */
  ask(): Promise<WitnessAnswer>;
}

export interface WitnessOptions {
  /** per-witness answer timeout in ms @default 1000 */
  readonly timeout?: number;
  /** run ping inside this named network namespace (tests); HTTP always goes from the current one */
  readonly netns?: string;
}

/**
 * Witnesses break the tie when the heartbeat to the peer is lost: a node that cannot reach any
 * witness assumes it is the isolated one and must not become (or stay) primary.
 */
export function createWitness(cfg: WitnessConfig | undefined, log: Logger, opts: WitnessOptions = {}): Witness {
  const timeout = opts.timeout ?? 1000;
  const prefix = opts.netns ? ['ip', 'netns', 'exec', opts.netns] : [];
  const askers: { label: string; run: (signal: AbortSignal) => Promise<string | undefined> }[] = [];
  for (const target of cfg?.ping ?? []) {
    const probe = pingProbe(target, timeout, prefix);
    askers.push({ label: `ping ${target}`, run: async (signal) => ((await probe(signal)).ok ? undefined : `ping ${target}: no answer`) });
  }
  for (const url of cfg?.http ?? []) {
    askers.push({
      label: `http ${url}`,
      run: async (signal) => {
        try {
          const res = await fetch(url, { signal, redirect: 'manual', headers: { 'user-agent': 'vigil-witness' } });
          await res.body?.cancel();
          return res.status >= 200 && res.status < 300 ? undefined : `http ${url}: status ${res.status}`;
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          return `http ${url}: ${err.cause?.code ?? err.message}`;
        }
      },
    });
  }

  async function ask(): Promise<WitnessAnswer> {
    const t0 = Date.now();
    if (askers.length === 0) return { reachable: true, reasons: [], ms: 0 };
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeout);
    const reasons: string[] = [];
    try {
      const by = await new Promise<string | undefined>((resolve) => {
        let pending = askers.length;
        for (const a of askers) {
          a.run(ac.signal)
            .catch((e: unknown) => `${a.label}: ${String(e)}`)
            .then((failure) => {
              if (failure === undefined) resolve(a.label);
              else reasons.push(ac.signal.aborted && !failure.includes('status') ? `${a.label}: no answer within ${timeout} ms` : failure);
              if (--pending === 0) resolve(undefined);
            });
        }
      });
      const answer: WitnessAnswer = by ? { reachable: true, by, reasons: [], ms: Date.now() - t0 } : { reachable: false, reasons, ms: Date.now() - t0 };
      log.debug({ witness: answer }, answer.reachable ? 'witness reachable' : 'no witness reachable');
      return answer;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }

  return { configured: askers.length > 0, ask, reachable: async () => (await ask()).reachable };
}
