import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer token check: 401 without a token, 403 with a wrong one (compared in constant time). */
export function bearerAuth(token: string): MiddlewareHandler {
  const want = digest(token);
  return async (c, next) => {
    const header = c.req.header('authorization');
    const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    if (!m) {
      c.header('WWW-Authenticate', 'Bearer realm="vigil"');
      return c.json({ error: 'authentication required: send Authorization: Bearer <admin token> (api.admin_token_file)' }, 401);
    }
    if (!timingSafeEqual(digest(m[1].trim()), want)) return c.json({ error: 'wrong admin token' }, 403);
    await next();
  };
}
