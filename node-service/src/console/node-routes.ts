import type { Hono } from 'hono';
import type { ClusterConfig } from '../config/types.ts';
import type { NodeFeed } from './feed.ts';
import { sseStream } from './sse.ts';

/**
 * Admin API routes the console builds on (under /api/v1, behind the bearer token and its role):
 * `GET /overview` this node's snapshot, `GET /watch` the same as server-sent events on every change
 * (what a peer's console relays), `GET /config` the configuration as loaded (role admin).
 */
export function registerNodeRoutes(api: Hono, feed: NodeFeed, config: ClusterConfig | undefined): void {
  api.get('/overview', (c) => c.json(feed.snapshot()));
  api.get('/watch', (c) => sseStream(c, (send) => feed.watch((s) => send('node', s))));
  api.get('/config', (c) => (config ? c.json(config) : c.json({ error: 'no configuration loaded' }, 404)));
}
