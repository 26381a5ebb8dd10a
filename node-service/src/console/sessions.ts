import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from '../api/tokens.ts';

export interface Session {
  readonly id: string;
  readonly role: Role;
  /** synchronizer token: sent by the page in X-CSRF-Token with every action */
  readonly csrf: string;
  /** kept in memory only, to relay the operator's own rights to the peers' APIs */
  readonly token: string;
  readonly created: number;
  lastUsed: number;
}

export const SESSION_IDLE_MS = 30 * 60_000;
export const SESSION_MAX_MS = 12 * 3600_000;
const MAX_SESSIONS = 200;

/** Console sessions, in memory (a daemon restart logs everyone out, which is what one expects). */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  create(role: Role, token: string): Session {
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), role, csrf: randomBytes(32).toString('base64url'), token, created: t, lastUsed: t };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastUsed > SESSION_IDLE_MS || t - s.created > SESSION_MAX_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastUsed = t;
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }
}

export function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
