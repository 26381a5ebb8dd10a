// A real database on the primary's view under a commit load, run by real `vigil daemon` processes
// (each node in its own network and mount namespace, the database started by its template's scripts).
// Every process of the primary's namespace is killed -9 with its link; the survivor's daemon takes
// over, its start script runs the database's crash recovery on the survivor's copy, and every
// transaction the client saw committed (through the VIP) is there. `replication.ack: write` here;
// the default `ack: fsync` runs the same story in app-postgresql.test.ts and app-mariadb.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMariadb, createPostgres, runMirrorStory, type MirrorDb } from '../helpers/app-dbs.ts';

describe.each([
  { name: 'PostgreSQL 15', create: () => createPostgres('mdpw', '198.18.66', { ack: 'write' }) },
  { name: 'MariaDB', create: () => createMariadb('mdmw', '198.18.67', { ack: 'write' }) },
])('mirror, ack: write: $name on the view, the primary namespace killed -9 during commits', ({ create }) => {
  let db: MirrorDb | undefined;
  beforeAll(async () => {
    db = await create();
  }, 180_000);
  afterAll(() => db?.app.destroy(), 60_000);

  it("the survivor's daemon takes over, crash recovery succeeds, every committed transaction is there", async () => {
    const r = await runMirrorStory(db!, { swapBack: false, log: console.log });
    expect(r.loggedAtFailover).toBeGreaterThan(30);
    expect(r.missing).toEqual([]);
  }, 300_000);
});
