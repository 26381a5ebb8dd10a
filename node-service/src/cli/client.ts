import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { loadConfig } from '../config/load.ts';
import { selectNode } from '../config/select-node.ts';
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts';

export interface ClientOptions {
  readonly config?: string;
  readonly node?: string;
  readonly api?: string;
  readonly tokenFile?: string;
}

export class CliError extends Error {}

/** Talks to a node's admin API: this node's (from the config) or the one given with --api. */
export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  static resolve(o: ClientOptions): ApiClient {
    let token = process.env.VIGIL_TOKEN;
    if (o.tokenFile) token = readToken(o.tokenFile);
    let base = o.api;
    if (!base || !token) {
      const file = o.config ?? DEFAULT_CONFIG_FILE;
      let config;
      try {
        config = loadConfig(file, { skipFileChecks: true });
      } catch (e) {
        throw new CliError(`${(e as Error).message.split('\n')[0]}${o.api ? '' : ' (or pass --api URL)'}`);
      }
      token ??= readToken(config.api.admin_token_file);
      if (!base) {
        const self = selectNode(config, o.node);
        const host = (config.api.listen ?? self.addrs)[0];
        base = `http://${isIPv6(host) ? `[${host}]` : host}:${config.api.port}`;
      }
    }
    return new ApiClient(base.replace(/\/+$/, ''), token);
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      throw new CliError(`cannot reach the vigil daemon at ${this.base} (${(e as Error).cause ?? (e as Error).message}): is it running?`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CliError(`${this.base} answered ${res.status} with a body that is not JSON`);
    }
    if (res.status === 401 || res.status === 403) throw new CliError(`${this.base}: ${(parsed as { error: string }).error}`);
    return { status: res.status, body: parsed as T };
  }
}

function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new CliError(`cannot read the admin token ${file} (${(e as NodeJS.ErrnoException).code}): run as root or pass --token-file`);
  }
}
