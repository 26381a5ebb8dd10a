import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { BANDWIDTH_HINT, formatBandwidth, parseBandwidth } from '../config/bandwidth.ts';
import type { ModuleRunner } from '../daemon/module-runner.ts';
import type { MirrorReplicator } from '../mirror/index.ts';
import { listing, trackedPlan } from '../mirror/verify.ts';
import { jsonBody } from './json-body.ts';

/** the shape only: the value is parsed after, so that a bad one is answered in the words of cluster.yaml's check */
const bandwidthBody = z.object({ bandwidth: z.union([z.string(), z.number(), z.null()]) }).strict();

/**
 * The replication routes of a mirror module: its resync bandwidth (read, and changed live with the
 * control role), and what `vigil verify` and `vigil diff` read from each node (its listing with
 * per-zone digests, and what its tracking says a resync would copy). None of them changes the data.
 */
export function registerMirrorRoutes(api: Hono, runners: ReadonlyMap<string, ModuleRunner>, mirrors: ReadonlyMap<string, MirrorReplicator>): void {
  /** the module's engine, or the answer that says why there is none */
  const engine = (c: Context): { m: MirrorReplicator; r: ModuleRunner } | Response => {
    const name = c.req.param('m') ?? '';
    const r = runners.get(name);
    if (!r) return c.json({ error: `unknown module "${name}" (modules: ${[...runners.keys()].join(', ')})` }, 404);
    const m = mirrors.get(name);
    if (!m) return c.json({ error: `module ${name} is a ${r.status().mode} module: only mirror modules replicate (resync bandwidth, verify and diff apply to them)` }, 409);
    return { m, r };
  };
  const about = (r: ModuleRunner) => {
    const s = r.status();
    return { module: s.module, node: s.node, state: s.state };
  };

  api.get('/modules/:m/resync-bandwidth', (c) => {
    const e = engine(c);
    if (e instanceof Response) return e;
    const bps = e.m.status().resyncBandwidth ?? null;
    return c.json({ ...about(e.r), bandwidth: bps, text: formatBandwidth(bps) });
  });

  api.post('/modules/:m/resync-bandwidth', async (c) => {
    const e = engine(c);
    if (e instanceof Response) return e;
    const body = await jsonBody(c, bandwidthBody, `{"bandwidth": "50MB/s"} (${BANDWIDTH_HINT})`);
    if (body instanceof Response) return body;
    const bps = body.bandwidth === null ? null : parseBandwidth(body.bandwidth);
    if (bps === undefined) return c.json({ error: `"${body.bandwidth}" is not a bandwidth: ${BANDWIDTH_HINT}` }, 400);
    e.m.setResyncBandwidth(bps);
    const s = about(e.r);
    const role = e.m.status().role;
    const note = role === 'primary' ? (e.m.status().peer === 'resyncing' ? 'the running resync goes at it now' : 'the next resync goes at it') : 'it applies when this node is primary';
    return c.json({ ok: true, ...s, bandwidth: bps, message: `resync bandwidth ${formatBandwidth(bps)} on ${s.node}: ${note} (until the daemon restarts: put replication.resync_bandwidth in cluster.yaml to keep it)` });
  });

  /** a read that walks the replicated data: its failure (EIO, EACCES) is the answer, with what failed */
  const read = async (c: Context, what: string, produce: (m: MirrorReplicator) => Promise<object>) => {
    const e = engine(c);
    if (e instanceof Response) return e;
    try {
      return c.json({ ...about(e.r), ...(await produce(e.m)) });
    } catch (err) {
      return c.json({ error: `cannot ${what}: ${(err as Error).message}` }, 500);
    }
  };
  api.get('/modules/:m/mirror/plan', (c) => read(c, 'size the tracked entries', (m) => trackedPlan(m.inspect())));
  api.get('/modules/:m/mirror/listing', (c) => read(c, 'list the replicated directories', (m) => listing(m.inspect())));
}
