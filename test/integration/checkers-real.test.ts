import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkerSchema, type CheckerConfig } from '../../node-service/src/config/schema.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { createChecker, type Checker, type CheckResult } from '../../node-service/src/checkers/index.ts';
import { createLan, type Lan } from '../helpers/netns.ts';

const log = silentLogger();
const cfg = (raw: Record<string, unknown>): CheckerConfig => checkerSchema.parse({ interval: 50, timeout: 500, failures: 1, ...raw });

function collect(c: Checker): { reports: CheckResult[]; until: (n: number, ms?: number) => Promise<CheckResult[]> } {
  const reports: CheckResult[] = [];
  c.start((r) => reports.push(r));
  return {
    reports,
    until: async (n, ms = 8000) => {
      const end = Date.now() + ms;
      while (reports.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      return reports;
    },
  };
}

const children: ChildProcess[] = [];
function app(argv0: string, ...args: string[]): ChildProcess {
  // bash's exec -a sets argv[0]: the process's comm stays "sleep", its argv[0] is the app name
  const c = spawn('bash', ['-c', `exec -a ${argv0} sleep 300 ${args.join(' ')}`], { stdio: 'ignore' });
  children.push(c);
  return c;
}
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('tcp checker', () => {
  it('is down when the listener closes and up again when it listens', async () => {
    const listen = (port: number) => new Promise<Server>((res) => { const s = createServer((sock) => sock.destroy()); s.listen(port, '127.0.0.1', () => res(s)); });
    let srv = await listen(0);
    const port = (srv.address() as { port: number }).port;
    const c = createChecker(cfg({ type: 'tcp', target: `127.0.0.1:${port}` }), { log });
    expect(c.name).toBe(`tcp:127.0.0.1:${port}`);
    expect((await c.probeOnce()).ok).toBe(true);
    const r = collect(c);
    await new Promise((res) => setTimeout(res, 150));
    expect(r.reports).toEqual([]);
    await new Promise<void>((res) => srv.close(() => res()));
    // a probe racing the close may see its connection reset instead of refused: down either way
    expect((await r.until(1))[0]).toMatchObject({ up: false, reason: expect.stringMatching(/ECONNREFUSED|ECONNRESET/) });
    srv = await listen(port);
    expect((await r.until(2))[1]).toMatchObject({ up: true });
    c.stop();
    srv.close();
  });
});

describe('script checker', () => {
  it('exit 0 is up, anything else down with the exit status and last output line', async () => {
    expect(await createChecker(cfg({ type: 'script', command: 'true' }), { log }).probeOnce()).toEqual({ ok: true, reason: 'script exited 0' });
    expect(await createChecker(cfg({ type: 'script', command: 'echo db gone >&2; exit 3' }), { log }).probeOnce()).toEqual({ ok: false, reason: 'script exit status 3: db gone' });
  });

  it('a script that hangs is killed with its children at the timeout', async () => {
    const marker = `30.${process.pid}`; // a sleep duration no other process uses
    const c = createChecker(cfg({ type: 'script', command: `sleep ${marker} & sleep ${marker}; wait`, timeout: 300 }), { log });
    const t0 = Date.now();
    const o = await c.probeOnce();
    expect(o).toEqual({ ok: false, reason: 'no answer within 300 ms' });
    expect(Date.now() - t0).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 100));
    const left = spawn('pgrep', ['-f', `^sleep ${marker}`]);
    const code = await new Promise((r) => left.on('exit', r));
    expect(code).toBe(1); // nothing left
  });
});

describe('process checker', () => {
  it('counts processes by name (argv[0] or comm) and by regex, with at_least and at_most', async () => {
    const name = `vigilapp${process.pid}`;
    const none = createChecker(cfg({ type: 'process', match: name }), { log });
    expect((await none.probeOnce()).reason).toBe(`0 processes matching "${name}", at least 1 required`);
    const a = app(name);
    app(name);
    app(name);
    // bash needs a moment to exec sleep under its new argv[0] (longer on a loaded machine)
    for (let i = 0; i < 100 && !(await none.probeOnce()).reason.startsWith('3 '); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await none.probeOnce()).ok).toBe(true);
    const tooMany = createChecker(cfg({ type: 'process', match: name, at_most: 2 }), { log });
    expect((await tooMany.probeOnce()).reason).toBe(`3 processes matching "${name}", at most 2 allowed`);
    const re = createChecker(cfg({ type: 'process', match: `^${name} 300$`, regex: true, at_least: 3 }), { log });
    expect((await re.probeOnce()).ok).toBe(true);
    // a killed application is seen down within one interval
    const r = collect(createChecker(cfg({ type: 'process', match: name, at_least: 3 }), { log }));
    a.kill('SIGKILL');
    expect((await r.until(1))[0]).toMatchObject({ up: false, reason: `2 processes matching "${name}", at least 3 required` });
  });
});

describe('vip checker', () => {
  it('is down while the VIP manager reports missing VIPs', async () => {
    let missing: string[] = [];
    const c = createChecker(cfg({ type: 'vip' }), { log, vip: { missing: async () => missing } });
    const r = collect(c);
    missing = ['198.18.4.100/24'];
    expect((await r.until(1))[0]).toEqual({ checker: 'vip', up: false, reason: 'VIP missing: 198.18.4.100/24' });
    missing = [];
    expect((await r.until(2))[1]).toMatchObject({ up: true });
    c.stop();
    expect(() => createChecker(cfg({ type: 'vip' }), { log })).toThrow(/VIP manager/);
  });
});

describe('interface and ping checkers in namespaces', () => {
  let lan: Lan;
  beforeAll(async () => {
    lan = await createLan('vgv', [
      { name: 'n1', addr: '198.18.4.1/24' },
      { name: 'gw', addr: '198.18.4.254/24' },
    ]);
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('interface: sysfs in the current namespace', async () => {
    expect((await createChecker(cfg({ type: 'interface', interface: 'lo' }), { log }).probeOnce()).ok).toBe(true);
    expect(await createChecker(cfg({ type: 'interface', interface: 'nosuch0' }), { log }).probeOnce()).toEqual({ ok: false, reason: 'interface nosuch0 does not exist' });
  });

  it('interface and ping go down when the link is cut and up when it is restored', async () => {
    const deps = { log, netns: lan.ns('n1') };
    const ifc = createChecker(cfg({ type: 'interface', interface: 'eth0' }), deps);
    const ping = createChecker(cfg({ type: 'ping', target: '198.18.4.254', interval: 100, timeout: 1000, failures: 2 }), deps);
    expect((await ping.probeOnce()).ok).toBe(true);
    const ri = collect(ifc);
    const rp = collect(ping);
    await new Promise((r) => setTimeout(r, 200));
    expect([...ri.reports, ...rp.reports]).toEqual([]);
    await lan.cut('n1');
    try {
      expect((await ri.until(1))[0]).toMatchObject({ up: false, reason: expect.stringMatching(/no carrier|lowerlayerdown|down/) });
      expect((await rp.until(1))[0]).toMatchObject({ up: false, reason: expect.stringContaining('does not answer ping') });
    } finally {
      await lan.restore('n1');
    }
    expect((await ri.until(2))[1]).toMatchObject({ up: true });
    expect((await rp.until(2))[1]).toMatchObject({ up: true });
    ifc.stop();
    ping.stop();
  });
});
