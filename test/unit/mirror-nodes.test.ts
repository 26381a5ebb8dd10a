import { describe, expect, it } from 'vitest';
import { NodeTable } from '../../node-service/src/mirror/fuse/nodes.ts';

/**
 * Found by the soak (npm run soak -- --minutes 60 --seed 2026, episodes #13 and #44): a secondary took
 * over and, within a second, a renamed slot file held another slot's record. On the read-only view the
 * applier had replaced `slots/1` underneath (rename over it) and ext4 gave its freed inode number to a
 * new file; the view's table still knew that number as `slots/1`, so looking up the new file linked it
 * there as a hard link, and the new primary's writes to `slots/.6.tmp` went to `slots/1`.
 */
describe('mirror view node table: inode numbers reused underneath', () => {
  it('on a read-only view, a new name whose inode number a replaced file had is its own entry', () => {
    const t = new NodeTable();
    const slots = t.remember(t.root, 'slots', 10, true, false);
    t.remember(slots, '1', 100, false, false);
    // the applier renames .1.tmp over 1 (inode 100 freed) and the filesystem reuses 100 for .6.tmp
    const tmp = t.remember(slots, '.6.tmp', 100, false, false);
    expect(t.rel(tmp)).toBe('slots/.6.tmp');
  });

  it('after a role change, inode numbers learnt before do not link new names', () => {
    const t = new NodeTable();
    const slots = t.remember(t.root, 'slots', 10, true);
    t.remember(slots, '1', 100, false);
    t.forgetInodes();
    const tmp = t.remember(slots, '.6.tmp', 100, false);
    expect(t.rel(tmp)).toBe('slots/.6.tmp');
  });

  it('on a writable view, a second name of a known inode is the same node (a hard link)', () => {
    const t = new NodeTable();
    const dir = t.remember(t.root, 'd', 10, true);
    const a = t.remember(dir, 'a', 100, false);
    const b = t.remember(dir, 'b', 100, false);
    expect(b).toBe(a);
  });
});
