/**
 * The kernel names entries by node id; the backing directory and the replication stream name them by
 * path. A node is one name the kernel has looked up: its parent and its name, so a rename moves a
 * whole subtree in O(1). Hard links get one node per name. A node lives while the kernel holds
 * lookups on it (FORGET gives them back); an unlinked node keeps serving the descriptors still open
 * on it, but has no path any more.
 */
export interface FuseNode {
  readonly id: number;
  parent: FuseNode | null;
  name: string;
  lookups: number;
  readonly children: Map<string, FuseNode>;
  /** false once unlinked or replaced: it has no path */
  attached: boolean;
}

export const ROOT_ID = 1;

export class NodeTable {
  private readonly byId = new Map<number, FuseNode>();
  private nextId = ROOT_ID + 1;
  readonly root: FuseNode;

  constructor() {
    this.root = { id: ROOT_ID, parent: null, name: '', lookups: 1, children: new Map(), attached: true };
    this.byId.set(ROOT_ID, this.root);
  }

  get(id: number): FuseNode | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** the entry's path relative to the replicated directory ("" for the directory itself), or null */
  rel(n: FuseNode): string | null {
    if (n === this.root) return '';
    const parts: string[] = [];
    for (let c: FuseNode | null = n; c && c !== this.root; c = c.parent) {
      if (!c.attached || !c.parent) return null;
      parts.push(c.name);
    }
    return parts.reverse().join('/');
  }

  childRel(parent: FuseNode, name: string): string | null {
    const p = this.rel(parent);
    if (p === null) return null;
    return p === '' ? name : `${p}/${name}`;
  }

  /** a successful LOOKUP/CREATE/MKDIR/…: one more lookup on parent/name */
  remember(parent: FuseNode, name: string): FuseNode {
    let n = parent.children.get(name);
    if (!n) {
      n = { id: this.nextId++, parent, name, lookups: 0, children: new Map(), attached: true };
      parent.children.set(name, n);
      this.byId.set(n.id, n);
    }
    n.lookups++;
    return n;
  }

  /** the name is gone from the backing directory (unlink, rmdir, replaced by a rename) */
  detach(parent: FuseNode, name: string): void {
    const n = parent.children.get(name);
    if (!n) return;
    parent.children.delete(name);
    n.attached = false;
    this.collect(n);
  }

  move(parent: FuseNode, name: string, newParent: FuseNode, newName: string): void {
    const n = parent.children.get(name);
    this.detach(newParent, newName);
    if (!n) return;
    parent.children.delete(name);
    n.parent = newParent;
    n.name = newName;
    newParent.children.set(newName, n);
  }

  forget(id: number, count: number): void {
    const n = this.byId.get(id);
    if (!n || n === this.root) return;
    n.lookups = Math.max(0, n.lookups - count);
    this.collect(n);
  }

  /** drops nodes the kernel no longer knows and that name nothing it still knows */
  private collect(n: FuseNode | null): void {
    while (n && n !== this.root && n.lookups === 0 && n.children.size === 0) {
      this.byId.delete(n.id);
      const p = n.parent;
      if (p && p.children.get(n.name) === n) p.children.delete(n.name);
      n.parent = null;
      n = p;
    }
  }
}
