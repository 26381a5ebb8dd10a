import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Applier } from '../../node-service/src/mirror/apply.ts';

/**
 * Found in the soak's daemon logs under disk faults ("DEP0137 Closing a FileHandle object on garbage
 * collection"): the secondary's fsyncs run beside the changes that follow them, and two operations
 * opening the same file at once each opened a descriptor; the map kept one, the other leaked until
 * the garbage collector closed it.
 */
describe('mirror applier: one descriptor per file, also when operations race to open it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-apply-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('two syncs of a file not yet open leave no descriptor behind once the applier is closed', async () => {
    writeFileSync(join(dir, 'f'), 'x');
    const a = new Applier([dir]);
    await a.init();
    const before = readdirSync('/proc/self/fd').length;
    await Promise.all([a.apply({ t: 'fsync', d: 0, p: 'f', ds: false }), a.apply({ t: 'fsync', d: 0, p: 'f', ds: true })]);
    await a.close();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });
});
