/**
 * The kernel names entries by node id; the backing directory and the replication stream name them by
 * path. A node is one inode the kernel has looked up, known by its names: a (parent, name) link each,
 * so a rename moves a whole subtree in O(1). A file with hard links is one node with several links
 * (the kernel then shares its attributes and page cache between the names, as on a local
 * filesystem); a directory has exactly one. A node lives while the kernel holds lookups on it (FORGET
 * gives them back); a node whose last name went keeps serving the descriptors still open on it, but
 * has no path any more.
 */
export interface FuseNode {
  readonly id: number;
  readonly ino: number;
  /** its names; empty once unlinked */
  readonly links: { parent: FuseNode; name: string }[];
  lookups: number;
  readonly children: Map<string, FuseNode>;
}

const ROOT_ID = 1;

export class NodeTable {
  private readonly byId = new Map<number, FuseNode>();
  /** non-directories by inode number, so a second name of a file finds its node */
  private readonly byIno = new Map<number, FuseNode>();
  private nextId = ROOT_ID + 1;
  readonly root: FuseNode;

  constructor() {
    this.root = { id: ROOT_ID, ino: 0, links: [], lookups: 1, children: new Map() };
    this.byId.set(ROOT_ID, this.root);
  }

  get(id: number): FuseNode | undefined {
    return this.byId.get(id);
  }

  /** the entry's path relative to the replicated directory ("" for the directory itself), or null */
  rel(n: FuseNode): string | null {
    if (n === this.root) return '';
    for (const l of n.links) {
      const p = this.rel(l.parent);
      if (p !== null) return p === '' ? l.name : `${p}/${l.name}`;
    }
    return null;
  }

  childRel(parent: FuseNode, name: string): string | null {
    const p = this.rel(parent);
    if (p === null) return null;
    return p === '' ? name : `${p}/${name}`;
  }

  /**
   * a successful LOOKUP/CREATE/MKDIR/LINK…: one more lookup on the inode at parent/name. `sameInode`: a
   * known inode number is that file under another name (a hard link). Only where every change goes
   * through the view: on a read-only view the backing changes underneath, and a number the filesystem
   * gave again to a new file would send that file's reads and writes to the old one's path.
   */
  remember(parent: FuseNode, name: string, ino: number, isDir: boolean, sameInode = true): FuseNode {
    let n = parent.children.get(name);
    // a name that now holds another inode (changed underneath, on a read-only view) is a new entry
    if (n && n.ino !== ino) {
      this.detach(parent, name);
      n = undefined;
    }
    if (!n && !isDir && sameInode) {
      n = this.byIno.get(ino);
      if (n) {
        n.links.push({ parent, name });
        parent.children.set(name, n);
      }
    }
    if (!n) {
      n = { id: this.nextId++, ino, links: [{ parent, name }], lookups: 0, children: new Map() };
      parent.children.set(name, n);
      this.byId.set(n.id, n);
      if (!isDir && sameInode) this.byIno.set(ino, n);
    }
    n.lookups++;
    return n;
  }

  /** the view changed roles: inode numbers learnt under the old role may name other files by now */
  forgetInodes(): void {
    this.byIno.clear();
  }

  /** the name is gone from the backing directory (unlink, rmdir, replaced by a rename) */
  detach(parent: FuseNode, name: string): void {
    const n = parent.children.get(name);
    if (!n) return;
    parent.children.delete(name);
    const i = n.links.findIndex((l) => l.parent === parent && l.name === name);
    if (i >= 0) n.links.splice(i, 1);
    // its inode number may be reused by a new file once the last name is gone
    if (n.links.length === 0 && this.byIno.get(n.ino) === n) this.byIno.delete(n.ino);
    this.collect(n);
    this.collect(parent);
  }

  move(parent: FuseNode, name: string, newParent: FuseNode, newName: string): void {
    const n = parent.children.get(name);
    if (n === newParent.children.get(newName) && n) return; // rename onto another name of itself: a no-op
    this.detach(newParent, newName);
    if (!n) return;
    parent.children.delete(name);
    const l = n.links.find((x) => x.parent === parent && x.name === name);
    if (l) {
      l.parent = newParent;
      l.name = newName;
    }
    newParent.children.set(newName, n);
  }

  forget(id: number, count: number): void {
    const n = this.byId.get(id);
    if (!n || n === this.root) return;
    n.lookups = Math.max(0, n.lookups - count);
    this.collect(n);
  }

  /** drops a node the kernel no longer knows and that names nothing it still knows */
  private collect(n: FuseNode): void {
    if (n === this.root || n.lookups > 0 || n.children.size > 0) return;
    this.byId.delete(n.id);
    if (this.byIno.get(n.ino) === n) this.byIno.delete(n.ino);
    const parents = n.links.splice(0).map((l) => {
      if (l.parent.children.get(l.name) === n) l.parent.children.delete(l.name);
      return l.parent;
    });
    for (const p of parents) this.collect(p);
  }
}
