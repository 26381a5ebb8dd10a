import type { Context } from 'hono';
import type { z } from 'zod';

/**
 * A request's JSON body checked against `schema` (zod, at the boundary): the data, or the 400 answer that
 * names what is wrong and shows `example`, the body to send. An empty body stands for `{}` when
 * `emptyIsObject` (the verbs take no body at all).
 */
export async function jsonBody<S extends z.ZodTypeAny>(c: Context, schema: S, example: string, emptyIsObject = false): Promise<z.output<S> | Response> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (!(emptyIsObject && text.trim() === '')) {
    try {
      raw = JSON.parse(text);
    } catch {
      return c.json({ error: `body is not JSON: send ${example}` }, 400);
    }
  }
  const body = schema.safeParse(raw);
  if (body.success) return body.data;
  const issues = body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
  return c.json({ error: `bad body: ${issues} (send ${example})` }, 400);
}
