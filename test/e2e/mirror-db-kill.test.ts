import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closePair, startPair, type Pair } from '../helpers/mirror-cluster.ts';
import { inside, killNamespace, mariadb, ownedDir, postgresql, type Database } from '../helpers/mirror-db.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number) : []);

/**
 * A real database on the primary's view under a commit load (two clients, each transaction logged
 * outside the view once its COMMIT returned). Every process of the primary's namespace is killed -9
 * (its daemon, the database, the clients); the survivor takes over, the database's crash recovery runs
 * on the survivor's copy, and every transaction a client saw committed is there.
 */
describe.each([
  { name: 'PostgreSQL 15', db: postgresql as Database, user: 'postgres', prefix: 'vgdp', ack: 'fsync' as const },
  { name: 'MariaDB', db: mariadb as Database, user: 'mysql', prefix: 'vgdm', ack: 'fsync' as const },
  { name: 'PostgreSQL 15', db: postgresql as Database, user: 'postgres', prefix: 'vgdq', ack: 'write' as const },
  { name: 'MariaDB', db: mariadb as Database, user: 'mysql', prefix: 'vgdn', ack: 'write' as const },
])('mirror, ack: $ack: $name on the view, the primary namespace killed -9 during commits', ({ db, user, prefix, ack }) => {
  const ROOT = `/tmp/${prefix}-e2e-db-${process.pid}`;
  let pair: Pair;
  let runB = '';
  let started = false;
  beforeAll(async () => {
    pair = await startPair({ root: ROOT, sendTimeoutMs: 1000, prefix, ack }, true);
  }, 60_000);
  afterAll(async () => {
    if (started) await db.stop(pair.b, join(ROOT, 'b', 'data', 'db'), runB).catch(() => killNamespace(pair.b));
    await closePair(pair);
  }, 120_000);

  it('crash recovery on the survivor succeeds and every committed transaction is there', async () => {
    const { a, b } = pair;
    const runA = ownedDir(join(ROOT, 'run-a'), user);
    runB = ownedDir(join(ROOT, 'run-b'), user);
    // GIVEN the database on a's view, in sync with b, and two clients committing
    await db.init(a, join(ROOT, 'a', 'data', 'db'), runA);
    const acks = [join(ROOT, 'ack-1.log'), join(ROOT, 'ack-2.log')];
    db.client(a, runA, 1, acks[0]);
    db.client(a, runA, 1_000_000, acks[1]);
    for (let t = 0; t < 600 && lines(acks[0]).length + lines(acks[1]).length < 150; t++) await sleep(100);
    await sleep(Math.floor(Math.random() * 300));
    // WHEN every process of a's namespace is killed at once
    const lost = b.waitEvent('lost', 20_000);
    const killed = killNamespace(a);
    await lost;
    // THEN b takes over, the database recovers from b's copy, and has every committed transaction
    await b.call('primary');
    // both "machines" share one PID namespace here: the killed server's PID (a zombie until it is
    // reaped) would look alive to PostgreSQL's stale-lock check, which on a real second machine cannot
    // happen; the takeover removes the lock file, as an HA start script does
    await inside(b, ['rm', '-f', join(ROOT, 'b', 'data', 'db', 'postmaster.pid')]);
    await db.start(b, join(ROOT, 'b', 'data', 'db'), runB);
    started = true;
    const present = new Set(await db.ids(b, runB));
    const committed = [...lines(acks[0]), ...lines(acks[1])];
    const missing = committed.filter((id) => !present.has(id));
    console.log(`${killed} processes killed; ${committed.length} transactions committed by the clients, ${present.size} rows after recovery on the survivor, ${missing.length} committed transactions missing`);
    expect(committed.length).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  }, 400_000);
});
