import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log/logger.ts';
import { allows, ROLE_RIGHTS, type Role, TokenSet } from './tokens.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** the role of the token (or console session) that authenticated this request */
    role: Role;
  }
}

/** Paths under these prefixes need the admin role whatever the method (the configuration view). */
export const ADMIN_PATHS = ['/api/v1/config'];

/**
 * The role a request needs: reading (GET, HEAD) is monitor, anything else (the verbs) control, and
 * the configuration view admin. Routes added later get the right role from their method without
 * being listed; a route that needs more adds `requireRole` itself.
 */
export function neededRole(method: string, path: string): Role {
  if (ADMIN_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) return 'admin';
  return method === 'GET' || method === 'HEAD' ? 'monitor' : 'control';
}

export function forbidden(role: Role, what: string, need: Role): string {
  return `this token has role ${role} (${ROLE_RIGHTS[role]}); ${what} needs role ${need}`;
}

/**
 * Bearer token check with roles: 401 without a token, 403 with an unknown one or a role too small
 * for the request. Every request is logged with its role and outcome, never with the token.
 */
export function bearerAuth(tokens: TokenSet | string, log?: Logger): MiddlewareHandler {
  const set = typeof tokens === 'string' ? new TokenSet([{ token: tokens, role: 'admin' }]) : tokens;
  return async (c, next) => {
    const started = performance.now();
    const path = c.req.path;
    const entry = (role: string, status: number) => ({ role, method: c.req.method, path, status, ms: Math.round(performance.now() - started) });
    const header = c.req.header('authorization');
    const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    if (!m) {
      log?.warn(entry('none', 401), 'api request refused: no token');
      c.header('WWW-Authenticate', 'Bearer realm="vigil"');
      return c.json({ error: 'authentication required: send Authorization: Bearer <token> (api.admin_token_file or api.tokens)' }, 401);
    }
    const role = set.roleOf(m[1].trim());
    if (!role) {
      log?.warn(entry('unknown', 403), 'api request refused: unknown token');
      return c.json({ error: 'wrong token: it is in none of api.admin_token_file or api.tokens' }, 403);
    }
    const need = neededRole(c.req.method, path);
    if (!allows(role, need)) {
      log?.warn(entry(role, 403), 'api request refused: role too small');
      return c.json({ error: forbidden(role, `${c.req.method} ${path}`, need) }, 403);
    }
    c.set('role', role);
    await next();
    log?.info(entry(role, c.res.status), 'api request');
  };
}

/** For a route that needs more than its method implies. */
export function requireRole(need: Role): MiddlewareHandler {
  return async (c, next) => {
    const role = c.get('role');
    if (!role || !allows(role, need)) return c.json({ error: forbidden(role ?? 'monitor', `${c.req.method} ${c.req.path}`, need) }, 403);
    await next();
  };
}
