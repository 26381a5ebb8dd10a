import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run as sh } from '../node-service/src/demo/lan.ts';
import { missingDurable, rssGrowth, rssMb, unhandledLines, VipWatch, warningLines, type AppState, type Violation } from './checker.ts';
import { Writer } from './clients.ts';
import { clear, isolate, loss, slow, unisolate, type PortSet } from './net.ts';
import { ARBITER_KINDS, describeEpisode, type Episode, type Fault, KINDS, type Kind, schedule, separates } from './nemesis.ts';
import { APP_PORT, createTopology, HEARTBEAT, NODES, type NodeName, type SoakTopology } from './topology.ts';
import { modulePorts } from '../node-service/src/config/ports.ts';

/** after the last fault of an episode is healed, the pair is PRIM/SECOND and in sync within this */
export const RECOVERY_BOUND_MS = 60_000;
/**
 * Two serving nodes are a violation while the nodes can hear each other: from this long after the last
 * separating fault ended and both daemons answer (a heartbeat timeout, the witness grace, and a second
 * for the step-down) on.
 */
export const REACH_GRACE_MS = HEARTBEAT.timeoutMs + HEARTBEAT.witnessGraceMs + 1000;
/**
 * With an arbiter, two serving nodes are a violation at any time. A daemon that is not running (killed,
 * or stopped) cannot take its VIP off the interface, and its node serves nothing meanwhile: the view's
 * writes wait for (or fail without) the daemon, and ready.txt does not answer. So its VIP counts once
 * the daemon has answered its API again for this long: the time to see that its lease lapsed and step
 * down (or, restarted, to remove its predecessor's VIP).
 */
export const STEP_DOWN_MS = 1000;
/** RSS growth (MiB) of a daemon over the run beyond which memory counts as unbounded */
export const RSS_GROWTH_LIMIT_MB = 48;

export interface SoakOptions {
  readonly minutes: number;
  readonly seed: number;
  /** replay from this episode of the seed's schedule */
  readonly from?: number;
  /** stop after this many episodes */
  readonly episodes?: number;
  /** fault kinds the schedule draws from (default: all) */
  readonly kinds?: readonly Kind[];
  /** an etcd arbiter holds the module's lease (default: a ping witness only) */
  readonly arbiter?: boolean;
  /** episodes to run instead of the seed's schedule (a regression test's fault at the moment found) */
  readonly plan?: readonly Episode[];
  readonly prefix?: string;
  readonly subnet?: string;
  readonly say?: (line: string) => void;
}

export interface TimelineEntry {
  readonly t: number;
  readonly what: string;
}

export interface SoakResult {
  readonly seed: number;
  readonly kinds?: readonly Kind[];
  readonly arbiter: boolean;
  readonly minutes: number;
  readonly episodes: number;
  readonly faultsByKind: Record<string, number>;
  readonly faults: number;
  readonly durableLost: number;
  readonly acked: number;
  readonly dualServingSamples: number;
  readonly samples: number;
  readonly recoveries: number[];
  readonly rssGrowthMb: number;
  readonly unhandledErrors: number;
  readonly violations: Violation[];
  /** Node's warnings in the daemon logs (not violations) */
  readonly warnings: string[];
  readonly timeline: TimelineEntry[];
  readonly dir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** a failed command's message and its stderr, on one line */
const oneLine = (e: unknown) => `${(e as Error).message} ${(e as { stderr?: string }).stderr ?? ''}`.replace(/\s+/g, ' ').slice(0, 300);

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const say = o.say ?? ((l: string) => console.log(l));
  const start = Date.now();
  const rel = (t: number) => `${((t - start) / 1000).toFixed(2)}s`;
  const deadline = start + o.minutes * 60_000;
  // without an arbiter its faults are left out (the same seed then gives the schedule it gave before they existed)
  const kinds = (o.kinds ?? KINDS).filter((k) => o.arbiter || !ARBITER_KINDS.includes(k));
  const all = schedule(o.seed, Math.ceil(o.minutes * 8) + 20, HEARTBEAT.timeoutMs, kinds);
  const plan = o.plan ?? all.slice(o.from ?? 0, o.episodes !== undefined ? (o.from ?? 0) + o.episodes : undefined);
  say(`soak: seed ${o.seed}, ${o.minutes} min, ${o.arbiter ? 'etcd arbiter' : 'witness, no arbiter'}, episodes from #${o.from ?? 0}, kinds ${o.kinds ? o.kinds.join(',') : 'all'}; schedule (roles P/S are taken when a fault starts):`);
  for (const e of plan) say(`  ${describeEpisode(e)}`);

  const violations: Violation[] = [];
  const timeline: TimelineEntry[] = [];
  let episode = -1;
  const mark = (what: string) => {
    timeline.push({ t: Date.now(), what });
    say(`[${rel(Date.now())}] ${what}`);
  };
  const violate = (kind: Violation['kind'], detail: string) => {
    const v = { kind, t: Date.now(), episode, detail };
    violations.push(v);
    say(`[${rel(v.t)}] VIOLATION ${kind} (seed ${o.seed}, episode #${episode}): ${detail}`);
  };

  // what the nodes serve, sampled every 20 ms
  const ready = new Map<NodeName, number>();
  let separating = 0;
  let reachableFrom = 0;
  let samples = 0;
  let dualSamples = 0;
  let dualSince = 0;
  const t = await createTopology({
    prefix: o.prefix ?? 'sk',
    subnet: o.subnet ?? '198.18.170',
    diskMb: 320,
    arbiter: o.arbiter ?? false,
    onReady: (_t, r) => NODES.forEach((n, i) => ready.set(n, r[i])),
  });
  const watch = new VipWatch(t);
  let writer: Writer | undefined;
  const timers: NodeJS.Timeout[] = [];
  let polling = true;
  const states = new Map<NodeName, { state: string; inSync: boolean; resync: Record<string, unknown> } | undefined>();
  const procs = new Map<NodeName, ChildProcess>();
  const expectExit = new Set<NodeName>();
  /** RSS samples per daemon incarnation (pid) */
  const rss = new Map<number, { t: number; mb: number; node: NodeName }[]>();
  const ports: PortSet = modulePorts(1);
  const faultsByKind: Record<string, number> = {};
  const recoveries: number[] = [];
  const reported = new Set<string>();
  let durableLost = 0;
  let stopped = false;
  let ran = 0;
  let polledFrom = 0;
  /** since when each daemon has answered every status poll */
  const upSince = new Map<NodeName, number>();

  const startDaemon = (n: NodeName) => {
    // two faults of one episode may both restart the node: one daemon a node (a second one's
    // EADDRINUSE exit would read as the daemon failing)
    const running = procs.get(n);
    if (running && running.exitCode === null && running.signalCode === null) return;
    const p = t.c.start(n);
    procs.set(n, p);
    p.once('exit', (code, signal) => {
      if (procs.get(n) === p) procs.delete(n);
      if (expectExit.delete(n) || stopped) return;
      const tail = readFileSync(join(t.c.dir, `${n}.log`), 'utf8').split('\n').slice(-15).join('\n');
      violate('unhandled_error', `${n}'s daemon exited by itself (code ${code}, signal ${signal}); its log ends:\n${tail}`);
      setTimeout(() => !stopped && startDaemon(n), 1000);
    });
  };
  const killDaemon = async (n: NodeName, signal: NodeJS.Signals = 'SIGKILL') => {
    const p = procs.get(n);
    if (!p) return;
    expectExit.add(n);
    await new Promise<void>((r) => {
      if (p.exitCode !== null || p.signalCode !== null) return r();
      p.once('exit', () => r());
      p.kill(signal);
    });
  };
  /** every process in the node's network namespace (the daemon, its application), as a power cut would */
  const killNode = async (n: NodeName) => {
    const spare = new Set(watch.pids());
    const pids = (await sh(['ip', 'netns', 'pids', t.c.lan.ns(n)])).split(/\s+/).filter(Boolean).map(Number);
    if (procs.get(n)) expectExit.add(n);
    const exited = killDaemon(n);
    for (const pid of pids) if (!spare.has(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await exited;
  };
  const primary = (): NodeName => NODES.find((n) => ['PRIM', 'ALONE'].includes(states.get(n)?.state ?? '')) ?? 'node1';
  const nodeOf = (f: Fault): NodeName => {
    const p = primary();
    return f.role === 'P' ? p : NODES.find((n) => n !== p)!;
  };
  const arbiterOf = () => {
    if (!t.arbiter) throw new Error('an arbiter fault in a topology without an arbiter: run with the arbiter, or leave the arbiter kinds out');
    return t.arbiter;
  };
  const peerAddr = (n: NodeName) => t.c.node(NODES.find((x) => x !== n)!).addr;
  const healthy = () => {
    const s = NODES.map((n) => states.get(n));
    const p = s.findIndex((x) => x?.state === 'PRIM');
    return p >= 0 && s[1 - p]?.state === 'SECOND' && s[1 - p]!.inSync;
  };
  /** true once a status poll begun after this call shows the pair PRIM/SECOND in sync */
  const waitHealthy = async (ms: number) => {
    const since = Date.now();
    const until = since + ms;
    while (Date.now() < until) {
      if (polledFrom >= since && healthy()) return true;
      await sleep(100);
    }
    return false;
  };
  const appState = async (timeoutMs: number): Promise<AppState | undefined> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await t.probe.json<AppState>(`http://${t.vip}:${APP_PORT}/state`, { timeoutMs: 5000 });
      if (s || Date.now() > until) return s;
      await sleep(250);
    }
  };
  /** required: the service must answer (after a heal); otherwise a check only when it answers */
  const checkDurable = async (required: boolean) => {
    const acks = [...(writer?.acks ?? [])];
    // judged on the primary only: an application left running on a node that is not (a daemon
    // killed under it) may answer for a moment from a copy that is not the served one
    const fromPrimary = async (timeoutMs: number): Promise<AppState | undefined> => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const s = await appState(0);
        if (s && NODES.filter((n) => ['PRIM', 'ALONE'].includes(states.get(n)?.state ?? '')).join() === s.node) return s;
        if (Date.now() > until) return undefined;
        await sleep(250);
      }
    };
    const s = await fromPrimary(required ? 30_000 : 0);
    if (!s) {
      if (required) violate('service_gone', 'the application on the primary did not answer through the VIP within 30 s of the pair being PRIM/SECOND');
      return;
    }
    if (s.bad > 0 && !reported.has('bad')) {
      reported.add('bad');
      violate('corrupt', `records.log on ${s.node} holds ${s.bad} lines that are not records`);
    }
    const lost = missingDurable(acks, s, reported);
    if (lost.length) {
      durableLost += lost.length;
      // read again a second later: a view that showed a short file once, or data that is gone
      await sleep(1000);
      const again = await appState(0);
      const still = again && again.node === s.node ? missingDurable(acks, again, new Set()).length : undefined;
      violate('durable_lost', `${lost.length} acknowledged records missing on ${s.node}, serving: ${lost.slice(0, 10).join('; ')}${lost.length > 10 ? ' …' : ''}; the view's records.log: stat ${s.statSize} bytes, read ${s.readBytes}; a second later ${still === undefined ? 'no answer' : `${still} missing (stat ${again!.statSize}, read ${again!.readBytes})`}; ${onDisk(s.node as NodeName, lost)}`);
    }
  };
  /**
   * what the serving node's backing directory holds, read from the host (each node's disk is mounted
   * there): tells a record gone from the data from one the view's read did not show
   */
  const onDisk = (n: NodeName, lost: readonly string[]): string => {
    const backing = join(t.disks.get(n)!.mountpoint, '.data.vigil-data');
    try {
      const lines = readFileSync(join(backing, 'records.log'), 'utf8').split('\n');
      const have = new Set(lines);
      const appends = lost.map((l) => /^append (\d+) /.exec(l)?.[1]).filter((x): x is string => !!x);
      const there = appends.filter((x) => have.has(x));
      return `the backing records.log on ${n} (read from the host): ${lines.join('\n').length} bytes, ${lines.length - 1} lines, ${there.length} of the ${appends.length} lost appends in it${there.length ? ` (${there.slice(0, 5).join(',')}: the view did not show them)` : ''}, ending ${lines.slice(-8).join(',')}`;
    } catch (e) {
      return `the backing records.log on ${n} could not be read: ${(e as Error).message}`;
    }
  };
  const logOffsets = new Map<NodeName, number>();
  let unhandled = 0;
  const warnings = new Set<string>();
  const scanLogs = () => {
    for (const n of NODES) {
      let text = '';
      try {
        text = readFileSync(join(t.c.dir, `${n}.log`), 'utf8');
      } catch {
        continue;
      }
      const from = logOffsets.get(n) ?? 0;
      logOffsets.set(n, text.length);
      for (const w of warningLines(text.slice(from))) warnings.add(w.replace(/^\(node:\d+\) /, ''));
      const bad = unhandledLines(text.slice(from));
      if (bad.length) {
        unhandled += bad.length;
        violate('unhandled_error', `${n}'s log: ${bad.slice(0, 8).join('\n    ')}`);
      }
    }
  };

  const apply = async (f: Fault, n: NodeName): Promise<() => Promise<void>> => {
    const lan = t.c.lan;
    const disk = t.disks.get(n)!;
    switch (f.kind) {
      case 'kill-daemon':
        await killDaemon(n);
        return async () => startDaemon(n);
      case 'kill-node':
        await killNode(n);
        return async () => startDaemon(n);
      case 'cut':
        await lan.cut(n);
        return () => lan.restore(n);
      case 'oneway-loss':
        await loss(lan, n, peerAddr(n), { dir: f.dir, pct: f.amount, path: 'all', ports });
        return () => clear(lan, n);
      case 'loss':
        await loss(lan, n, peerAddr(n), { dir: 'both', pct: f.amount, path: 'all', ports });
        return () => clear(lan, n);
      case 'hb-loss':
        await loss(lan, n, peerAddr(n), { dir: f.dir, pct: f.amount, path: 'heartbeat', ports });
        return () => clear(lan, n);
      case 'hb-delay':
        await slow(lan, n, { path: 'heartbeat', kbit: f.amount, queue: 16, ports });
        return () => clear(lan, n);
      case 'repl-slow':
        await slow(lan, n, { path: 'replication', kbit: f.amount, queue: 64, ports });
        return () => clear(lan, n);
      case 'disk-full':
        await disk.fill();
        return () => disk.free();
      case 'disk-stall':
        await disk.freeze();
        return () => disk.thaw();
      case 'disk-error':
        await disk.fail();
        return async () => {
          // a failed disk is repaired with the node down: unmount, e2fsck, mount, start again
          await killNode(n);
          try {
            await disk.repair();
          } finally {
            startDaemon(n);
          }
        };
      case 'sigstop': {
        const pid = procs.get(n)?.pid;
        if (pid) process.kill(pid, 'SIGSTOP');
        return async () => {
          if (pid) try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
        };
      }
      case 'resync-restart': {
        // the primary writes alone while the secondary is down, so its return has something to resync
        await killDaemon(n);
        for (let i = 0; i < 2; i++) await t.probe.request(`http://${t.vip}:${APP_PORT}/bulk?mb=16`, { method: 'POST', timeoutMs: 60_000 });
        startDaemon(n);
        const until = Date.now() + 30_000;
        while (Date.now() < until && !((states.get(n)?.resync as { bytesTotal?: number } | undefined)?.bytesTotal ?? 0)) await sleep(50);
        mark(`${n} resyncing (${JSON.stringify(states.get(n)?.resync ?? {})}): restarted in ${f.holdMs} ms`);
        return async () => {
          await killDaemon(n);
          startDaemon(n);
        };
      }
      case 'arbiter-cut':
        await isolate(lan, n, arbiterOf().addr);
        return () => unisolate(lan, n);
      case 'arbiter-down':
        await arbiterOf().kill();
        return () => arbiterOf().start();
      case 'swap': {
        const code = await t.command(n, 'swap');
        mark(`swap asked of ${n}: HTTP ${code}`);
        return async () => {};
      }
    }
  };

  const runEpisode = async (e: Episode) => {
    episode = e.index;
    say(`[${rel(Date.now())}] episode ${describeEpisode(e)}`);
    await Promise.all(
      e.faults.map(async (f) => {
        await sleep(f.offsetMs);
        const n = nodeOf(f);
        faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
        if (separates(f.kind)) separating += 1;
        mark(`fault ${f.kind} on ${n} (${f.role})`);
        let heal: () => Promise<void> = async () => {};
        try {
          heal = await apply(f, n);
        } catch (err) {
          mark(`fault ${f.kind} on ${n} could not be applied: ${oneLine(err)}`);
        }
        await sleep(f.holdMs);
        await heal().catch((err) => mark(`heal of ${f.kind} on ${n} failed: ${oneLine(err)}`));
        if (separates(f.kind)) {
          separating -= 1;
          if (separating === 0) reachableFrom = Date.now() + REACH_GRACE_MS;
        }
        mark(`healed ${f.kind} on ${n}`);
      }),
    );
    const healed = Date.now();
    if (await waitHealthy(RECOVERY_BOUND_MS)) {
      recoveries.push(Date.now() - healed);
      mark(`recovered in ${Date.now() - healed} ms`);
    } else {
      violate('no_recovery', `not PRIM/SECOND in sync within ${RECOVERY_BOUND_MS} ms of the heal: ${NODES.map((n) => `${n}=${states.get(n)?.state ?? 'DOWN'}`).join(' ')}`);
      if (!(await waitHealthy(120_000))) {
        // an operator would restart the daemons: so does the soak, to go on (the violation stands)
        mark('still not recovered 3 minutes after the heal: restarting both daemons');
        for (const n of NODES) await killDaemon(n);
        for (const n of NODES) startDaemon(n);
        if (!(await waitHealthy(120_000))) {
          const last = timeline.slice(-20).map((x) => `  ${rel(x.t)} ${x.what}`).join('\n');
          throw new Error(`the pair did not recover, even after a restart, after episode #${e.index}: stopping the soak (node logs in ${t.c.dir}); the timeline's end:\n${last}`);
        }
      }
      recoveries.push(Date.now() - healed);
    }
    await checkDurable(true);
    scanLogs();
    await sleep(e.gapMs);
  };

  try {
    await watch.start();
    // states, every 250 ms: roles for the nemesis, recovery, the timeline
    void (async () => {
      let last = '';
      while (polling) {
        const begun = Date.now();
        const got = await Promise.all(NODES.map((n) => t.status(n)));
        polledFrom = begun;
        NODES.forEach((n, i) => states.set(n, got[i] && { state: got[i]!.state, inSync: got[i]!.inSync, resync: got[i]!.resync }));
        NODES.forEach((n, i) => (got[i] ? upSince.get(n) || upSince.set(n, begun) : upSince.delete(n)));
        const line = NODES.map((n) => `${n}=${states.get(n)?.state ?? 'DOWN'}${states.get(n)?.inSync ? '' : '*'}`).join(' ');
        if (line !== last) mark(`states ${line}`);
        last = line;
        await sleep(250);
      }
    })();
    timers.push(
      setInterval(() => {
        samples += 1;
        const vip = NODES.filter((n) => watch.held.get(n));
        const rd = NODES.filter((n) => ready.get(n) === 200);
        const up = NODES.map((n) => upSince.get(n));
        let judged: boolean;
        let dual: boolean;
        if (t.arbiter) {
          const live = NODES.filter((n, i) => watch.held.get(n) && up[i] !== undefined && Date.now() - up[i]! >= STEP_DOWN_MS);
          dual = live.length > 1 || rd.length > 1;
          judged = true;
        } else {
          dual = vip.length > 1 || rd.length > 1;
          // a restarted daemon clears what its killed predecessor left (the VIP) once it runs: both
          // daemons answering for the grace, with no separating fault, is "can reach each other"
          judged = separating === 0 && Date.now() >= reachableFrom && up.every((u) => u !== undefined && Date.now() - u >= REACH_GRACE_MS);
        }
        if (dual && judged) {
          dualSamples += 1;
          if (!dualSince) dualSince = Date.now();
        } else if (dualSince) {
          violate('dual_serving', `both nodes serving for ${Date.now() - dualSince} ms from ${rel(dualSince)}${t.arbiter ? ' with an arbiter' : ' while they could reach each other'} (VIP on ${vip.join('+') || '-'}, ready on ${rd.join('+') || '-'})`);
          dualSince = 0;
        }
      }, 20),
      setInterval(() => {
        for (const n of NODES) {
          const pid = procs.get(n)?.pid;
          const mb = rssMb(pid);
          if (pid && mb !== undefined) rss.set(pid, [...(rss.get(pid) ?? []), { t: Date.now(), mb, node: n }]);
        }
      }, 5000),
      setInterval(() => void checkDurable(false), 20_000),
    );
    startDaemon('node1');
    startDaemon('node2');
    if (!(await waitHealthy(90_000))) throw new Error(`the pair did not start (PRIM/SECOND in sync) within 90 s: logs in ${t.c.dir}`);
    writer = new Writer(t, 25);
    await sleep(2000);
    for (const e of plan) {
      if (Date.now() >= deadline) break;
      await runEpisode(e);
      ran += 1;
    }
    episode = -1;
    writer.stop();
    await sleep(500);
    await checkDurable(true);
    scanLogs();
    const growth = Math.max(0, ...[...rss.values()].map(rssGrowth));
    // every sample kept beside the logs: a growth is read as a leak (rising to the end) or a plateau
    writeFileSync(join(t.c.dir, 'rss.tsv'), ['node\tpid\tseconds\tmb', ...[...rss].flatMap(([pid, xs]) => xs.map((x) => `${x.node}\t${pid}\t${Math.round((x.t - start) / 1000)}\t${x.mb}`))].join('\n') + '\n');
    if (growth > RSS_GROWTH_LIMIT_MB) violate('rss_growth', `a daemon's RSS grew ${growth.toFixed(1)} MiB over the run`);
    const faults = Object.values(faultsByKind).reduce((a, b) => a + b, 0);
    return {
      seed: o.seed,
      kinds: o.kinds,
      arbiter: !!t.arbiter,
      minutes: Math.round((Date.now() - start) / 6000) / 10,
      episodes: ran,
      faultsByKind,
      faults,
      durableLost,
      acked: writer.acks.length,
      dualServingSamples: dualSamples,
      samples,
      recoveries,
      rssGrowthMb: Math.round(growth * 10) / 10,
      unhandledErrors: unhandled + violations.filter((v) => v.kind === 'unhandled_error' && v.detail.includes('exited by itself')).length,
      violations,
      warnings: [...warnings],
      timeline,
      dir: t.c.dir,
    };
  } finally {
    stopped = true;
    polling = false;
    for (const x of timers) clearInterval(x);
    writer?.stop();
    watch.stop();
    for (const n of NODES) await t.disks.get(n)!.thaw().catch(() => undefined);
    for (const n of NODES) await clear(t.c.lan, n).catch(() => undefined);
    for (const n of NODES) await unisolate(t.c.lan, n).catch(() => undefined);
    await t.destroy();
  }
}
