import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** Who may do what on the admin API and the console (SafeKit's Monitor / Control / Admin). */
export const ROLES = ['monitor', 'control', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { monitor: 0, control: 1, admin: 2 };

/** true when a holder of `have` may do what needs `need` (admin ⊃ control ⊃ monitor) */
export const allows = (have: Role, need: Role): boolean => RANK[have] >= RANK[need];

export const ROLE_RIGHTS: Record<Role, string> = {
  monitor: 'read states, logs and metrics',
  control: 'also run the verbs (start, stop, restart, prim, second, swap, ...)',
  admin: 'everything, including the configuration view',
};

function readAll(files: readonly { role: Role; file: string }[]): { token: string; role: Role }[] {
  return files.flatMap((f) => readTokenFile(f.file).map((token) => ({ token, role: f.role })));
}

/** what changes when a token file is edited or replaced */
function stampOf(files: readonly { file: string }[]): string {
  return files
    .map((f) => {
      const st = statSync(f.file, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '-';
    })
    .join(',');
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The tokens of one file: every non-empty line that is not a comment (several tokens per file rotate easily). */
export function readTokenFile(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * The API tokens of this node with their roles. Only SHA-256 digests are kept; a lookup compares the
 * presented token with every entry in constant time and never stops early, so neither the timing nor
 * the order of the files tells anything about a token.
 */
export class TokenSet {
  #entries: { digest: Buffer; role: Role }[];
  /** the files the tokens come from, to follow their changes (fromConfig) */
  #files: readonly { role: Role; file: string }[] = [];
  #stamp = '';
  #checked = 0;

  constructor(entries: readonly { token: string; role: Role }[]) {
    this.#entries = entries.map((e) => ({ digest: digest(e.token), role: e.role }));
  }

  /**
   * `admin_token_file` (role admin, as before) plus every `api.tokens` entry. The files are followed:
   * a lookup at most every RECHECK_MS notices a changed file and reads them all again, so a token is
   * added or withdrawn without a restart. A file that cannot be read then keeps the tokens known before.
   */
  static fromConfig(api: { admin_token_file: string; tokens?: readonly { role: Role; file: string }[] }): TokenSet {
    const files = [{ role: 'admin' as Role, file: api.admin_token_file }, ...(api.tokens ?? [])];
    const set = new TokenSet(readAll(files));
    set.#files = files;
    set.#stamp = stampOf(files);
    set.#checked = Date.now();
    return set;
  }

  static readonly RECHECK_MS = 2000;

  private follow(): void {
    if (this.#files.length === 0 || Date.now() - this.#checked < TokenSet.RECHECK_MS) return;
    this.#checked = Date.now();
    const stamp = stampOf(this.#files);
    if (stamp === this.#stamp) return;
    try {
      this.#entries = readAll(this.#files).map((e) => ({ digest: digest(e.token), role: e.role }));
      this.#stamp = stamp;
    } catch {
      /* mid-edit or unreadable: keep the tokens known so far, try again later */
    }
  }

  /** the highest role this token has, or undefined for an unknown token */
  roleOf(token: string): Role | undefined {
    this.follow();
    const d = digest(token);
    let best = -1;
    for (const e of this.#entries) {
      const hit = timingSafeEqual(d, e.digest);
      best = Math.max(best, hit ? RANK[e.role] : -1);
    }
    return best < 0 ? undefined : ROLES[best];
  }

  get size(): number {
    return this.#entries.length;
  }

  toJSON(): string {
    return '[tokens]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `TokenSet(${this.#entries.length} tokens, redacted)`;
  }
}
