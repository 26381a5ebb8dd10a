/**
 * Test/bench agent run inside one namespace of a farm LAN (`ip netns exec NS node --import tsx
 * farm-agent.ts ROLE NAME`). It reads one JSON command per line on stdin and answers one JSON line
 * {id, ok, result|error} on stdout.
 *
 * role "node": serves HTTP on 8080 (body: the node name; records each request's ?id=) and a line echo
 *   on 8081 (greets with the node name), and drives a FarmFilter: install / apply / remove / status.
 *   Also counts the SYN-ACKs it sends (a separate nft table) so a test can prove that two nodes never
 *   both accept one new connection.
 * role "client": runs HTTP requests (one new connection each, optionally bound to many source
 *   addresses), long-lived echo connections, a steady probe stream (gap measurement) and a
 *   keep-alive load (throughput).
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { FarmFilter, type BucketPlan } from '../../node-service/src/farm/index.ts';
import { createLogger } from '../../node-service/src/log/logger.ts';

const [role, name] = process.argv.slice(2);
const log = createLogger({ node: name, destination: process.stderr, level: process.env.VIGIL_LOG_LEVEL ?? 'info' });
type Cmd = { id: number; op: string; [k: string]: unknown };
const handlers: Record<string, (c: Cmd) => Promise<unknown> | unknown> = {};

// ---------------------------------------------------------------- node role
let served: string[] = [];
let filter: FarmFilter | undefined;
if (role === 'node') {
  http.createServer((req, res) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id');
    if (id) served.push(id);
    res.setHeader('content-type', 'text/plain');
    res.end(name);
  }).listen(8080);
  net.createServer((s) => {
    s.on('error', () => undefined);
    s.write(`${name}\n`);
    s.pipe(s);
  }).listen(8081);
  execFileSync('nft', ['-f', '-'], {
    input: [
      'add table inet vgftest',
      'add counter inet vgftest synack',
      'add chain inet vgftest out { type filter hook output priority 0; }',
      'add rule inet vgftest out tcp flags & (syn | ack) == (syn | ack) counter name synack',
      'add counter inet vgftest rst',
      'add rule inet vgftest out tcp flags & rst == rst counter name rst',
    ].join('\n') + '\n',
  });
  handlers.install = async (c) => {
    const cfg = validateConfig(c.config, '/tmp/farm-test.yaml', { skipFileChecks: true });
    const module = cfg.modules.find((m) => m.name === c.module)!;
    if (filter) await filter.remove();
    filter = new FarmFilter({ module, self: name, log });
    await filter.remove();
    await filter.install();
    return filter.spec;
  };
  handlers.apply = (c) => filter!.apply(c.plan as BucketPlan);
  handlers.remove = async () => { await filter?.remove(); filter = undefined; };
  handlers.status = () => filter!.status();
  /** what the kernel enforces for a module, whoever installed it (e.g. a daemon) */
  handlers.inspect = (c) => {
    const cfg = validateConfig(c.config, '/tmp/farm-test.yaml', { skipFileChecks: true });
    const module = cfg.modules.find((m) => m.name === c.module)!;
    return new FarmFilter({ module, self: name, log }).status();
  };
  handlers.served = () => { const s = served; served = []; return s; };
  handlers.rsts = () => {
    const out = execFileSync('nft', ['-j', 'reset', 'counter', 'inet', 'vgftest', 'rst']).toString();
    const doc = JSON.parse(out) as { nftables: { counter?: { packets: number } }[] };
    return doc.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
  };
  handlers.synacks = () => {
    const out = execFileSync('nft', ['-j', 'reset', 'counter', 'inet', 'vgftest', 'synack']).toString();
    const doc = JSON.parse(out) as { nftables: { counter?: { packets: number } }[] };
    return doc.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
  };
}

// ---------------------------------------------------------------- client role
interface HttpResult { id: string; src: string; node: string | null; err?: string; t0: number; t1: number }

function request(target: string, port: number, id: string, src: string | undefined, timeoutMs: number, agent?: http.Agent): Promise<HttpResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let done = false;
    const finish = (node: string | null, err?: string) => {
      if (done) return;
      done = true;
      resolve({ id, src: src ?? '', node, err, t0, t1: Date.now() });
    };
    const req = http.request({ host: target, port, path: `/?id=${id}`, agent: agent ?? false, localAddress: src, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => finish(body));
      res.on('error', (e) => finish(null, e.message));
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', (e) => finish(null, e.message));
    req.end();
  });
}

if (role === 'client') {
  handlers.http = async (c) => {
    const { target, port, count, concurrency, sources, idPrefix, timeoutMs } = c as unknown as {
      target: string; port: number; count: number; concurrency: number; sources?: string[]; idPrefix: string; timeoutMs?: number;
    };
    const results: HttpResult[] = new Array(count);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next;
        next += 1;
        const src = sources && sources.length > 0 ? sources[i % sources.length] : undefined;
        results[i] = await request(target, port, `${idPrefix}-${i}`, src, timeoutMs ?? 3000);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return results;
  };

  const longConns: { node: string; sent: number; echoed: number; error?: string; sock: net.Socket; timer?: NodeJS.Timeout }[] = [];
  handlers.longOpen = async (c) => {
    const { target, port, conns, intervalMs } = c as unknown as { target: string; port: number; conns: number; intervalMs: number };
    const opened = await Promise.all(Array.from({ length: conns }, () => new Promise<(typeof longConns)[number]>((resolve, reject) => {
      const sock = net.connect({ host: target, port });
      const st: (typeof longConns)[number] = { node: '', sent: 0, echoed: 0, sock };
      let buf = '';
      sock.setTimeout(5000, () => reject(new Error('long connection: no greeting')));
      sock.on('error', (e) => { st.error = st.error ?? e.message; reject(e); });
      sock.on('close', () => { st.error = st.error ?? 'closed'; });
      sock.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!st.node) {
            st.node = line;
            sock.setTimeout(0);
            st.timer = setInterval(() => { if (!st.error) { st.sent += 1; sock.write(`ping ${st.sent}\n`); } }, intervalMs);
            resolve(st);
          } else st.echoed += 1;
        }
      });
    })));
    longConns.push(...opened);
    return opened.map((s) => s.node);
  };
  handlers.longClose = async () => {
    for (const s of longConns) clearInterval(s.timer);
    // let the last echoes arrive (up to 2 s on a busy machine)
    for (let i = 0; i < 40 && longConns.some((s) => !s.error && s.echoed < s.sent); i += 1) await new Promise((r) => setTimeout(r, 50));
    const out = longConns.map((s) => {
      const r = { node: s.node, sent: s.sent, echoed: s.echoed, error: s.error };
      s.sock.removeAllListeners('close');
      s.sock.destroy();
      return r;
    });
    longConns.length = 0;
    return out;
  };

  let probe: { stop: boolean; results: HttpResult[]; done: Promise<void> } | undefined;
  handlers.probeStart = (c) => {
    const { target, port, intervalMs, timeoutMs } = c as unknown as { target: string; port: number; intervalMs: number; timeoutMs: number };
    const p = { stop: false, results: [] as HttpResult[], done: Promise.resolve() };
    const pending: Promise<void>[] = [];
    let i = 0;
    p.done = (async () => {
      while (!p.stop) {
        pending.push(request(target, port, `probe-${i}`, undefined, timeoutMs).then((r) => { p.results.push(r); }));
        i += 1;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      await Promise.all(pending);
    })();
    probe = p;
    return true;
  };
  handlers.probeStop = async () => {
    probe!.stop = true;
    await probe!.done;
    return probe!.results.sort((a, b) => a.t0 - b.t0);
  };

  handlers.load = async (c) => {
    const { target, port, durationMs, concurrency } = c as unknown as { target: string; port: number; durationMs: number; concurrency: number };
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const end = Date.now() + durationMs;
    let ok = 0;
    let failed = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const r = await request(target, port, 'load', undefined, 3000, agent);
        if (r.node) ok += 1; else failed += 1;
      }
    }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    agent.destroy();
    return { ok, failed, seconds, rps: ok / seconds };
  };
}

handlers.ping = () => name;
handlers.exit = () => { setTimeout(() => process.exit(0), 10); return true; };

createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line) as Cmd;
  const h = handlers[c.op];
  Promise.resolve()
    .then(() => { if (!h) throw new Error(`unknown op ${c.op}`); return h(c); })
    .then((result) => process.stdout.write(`${JSON.stringify({ id: c.id, ok: true, result })}\n`))
    .catch((e: Error) => process.stdout.write(`${JSON.stringify({ id: c.id, ok: false, error: e.message })}\n`));
});
process.stdin.on('end', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ id: 0, ok: true, result: 'ready' })}\n`);
