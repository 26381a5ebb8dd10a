import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * One request to a node's admin API over HTTP or HTTPS. Node's fetch cannot be told which CA to
 * trust per request, and the API's certificate is usually the cluster's own (vigil tls selfsigned).
 */
export function openApi(url: string, o: { method: string; token: string; body?: string; ca?: Buffer; timeoutMs: number }): Promise<IncomingMessage> {
  const https = url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: o.method,
        headers: { authorization: `Bearer ${o.token}`, ...(o.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) }) },
        ...(https && o.ca ? { ca: o.ca } : {}),
        timeout: o.timeoutMs,
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${o.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** the whole answer as text; throws on a connection failure */
export async function requestApi(url: string, o: { method: string; token: string; body?: unknown; ca?: Buffer; timeoutMs?: number }): Promise<{ status: number; text: string }> {
  const res = await openApi(url, { ...o, body: o.body === undefined ? undefined : JSON.stringify(o.body), timeoutMs: o.timeoutMs ?? 10_000 });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') };
}
