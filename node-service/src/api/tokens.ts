import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

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
  readonly #entries: { digest: Buffer; role: Role }[];

  constructor(entries: readonly { token: string; role: Role }[]) {
    this.#entries = entries.map((e) => ({ digest: digest(e.token), role: e.role }));
  }

  /** `admin_token_file` (role admin, as before) plus every `api.tokens` entry */
  static fromConfig(api: { admin_token_file: string; tokens?: readonly { role: Role; file: string }[] }): TokenSet {
    const entries = readTokenFile(api.admin_token_file).map((token) => ({ token, role: 'admin' as Role }));
    for (const t of api.tokens ?? []) for (const token of readTokenFile(t.file)) entries.push({ token, role: t.role });
    return new TokenSet(entries);
  }

  /** the highest role this token has, or undefined for an unknown token */
  roleOf(token: string): Role | undefined {
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
