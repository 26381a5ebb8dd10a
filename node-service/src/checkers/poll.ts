import type { Logger } from '../log/logger.ts';

/** What a checker reports to the state machine: only on a change of state. */
export interface CheckResult {
  readonly checker: string;
  readonly up: boolean;
  readonly reason: string;
}

export interface Checker {
  readonly name: string;
  /** Starts probing (first probe at once). `report` is called on state changes only; before the first report the checker counts as up. */
  start(report: (r: CheckResult) => void): void;
  /** Stops probing; a probe in flight is abandoned (its process killed) and never reported. */
  stop(): void;
  /** One probe now, outside the schedule (CLI, tests); does not change the reported state. */
  probeOnce(): Promise<ProbeOutcome>;
}

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly reason: string;
}

/** A probe must settle by itself or when `signal` aborts (the poller aborts it at the timeout). */
export type Probe = (signal: AbortSignal) => Promise<ProbeOutcome>;

export interface PollOptions {
  readonly name: string;
  /** ms between the starts of two probes (a slow probe delays the next, probes never overlap) */
  readonly interval: number;
  /** ms after which a probe is aborted and counts as failed */
  readonly timeout: number;
  /** consecutive failures before the checker is down */
  readonly failures: number;
  readonly log: Logger;
}

/**
 * The schedule shared by every checker type: probe every `interval`, count consecutive failures,
 * report down at the `failures`-th and up at the first success after that.
 */
export class PollingChecker implements Checker {
  readonly name: string;
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  private running = false;
  private up = true;
  private consecutive = 0;
  private generation = 0;

  constructor(private readonly opts: PollOptions, private readonly probe: Probe) {
    this.name = opts.name;
  }

  start(report: (r: CheckResult) => void): void {
    if (this.running) throw new Error(`checker ${this.name} already started`);
    this.running = true;
    this.up = true;
    this.consecutive = 0;
    const gen = ++this.generation;
    const loop = async (): Promise<void> => {
      const t0 = Date.now();
      const outcome = await this.runProbe();
      if (!this.running || gen !== this.generation) return;
      this.record(outcome, report);
      const wait = Math.max(0, this.opts.interval - (Date.now() - t0));
      this.timer = setTimeout(() => void loop(), wait);
    };
    void loop();
  }

  stop(): void {
    this.running = false;
    this.generation += 1;
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  probeOnce(): Promise<ProbeOutcome> {
    return this.runProbe(false);
  }

  private record(o: ProbeOutcome, report: (r: CheckResult) => void): void {
    if (o.ok) {
      this.consecutive = 0;
      if (!this.up) {
        this.up = true;
        this.opts.log.info({ checker: this.name, reason: o.reason }, 'checker up');
        report({ checker: this.name, up: true, reason: o.reason });
      }
      return;
    }
    this.consecutive += 1;
    this.opts.log.debug({ checker: this.name, reason: o.reason, consecutive: this.consecutive }, 'probe failed');
    if (this.up && this.consecutive >= this.opts.failures) {
      this.up = false;
      const reason = this.opts.failures > 1 ? `${o.reason} (${this.consecutive} consecutive failures)` : o.reason;
      this.opts.log.warn({ checker: this.name, reason }, 'checker down');
      report({ checker: this.name, up: false, reason });
    }
  }

  private async runProbe(track = true): Promise<ProbeOutcome> {
    const ac = new AbortController();
    if (track) this.abort = ac;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ProbeOutcome>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ ok: false, reason: `no answer within ${this.opts.timeout} ms` });
      }, this.opts.timeout);
    });
    try {
      return await Promise.race([
        this.probe(ac.signal).catch((e: unknown) => ({ ok: false, reason: e instanceof Error ? e.message : String(e) })),
        timedOut,
      ]);
    } finally {
      clearTimeout(timer);
      if (!ac.signal.aborted) ac.abort(); // lets a probe release what it holds (sockets, children)
    }
  }
}
