import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { loadConfig } from '../config/load.ts';
import { selectNode } from '../config/select-node.ts';
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts';
import { requestApi } from '../api/http-client.ts';
import { readTokenFile } from '../api/tokens.ts';

export interface ClientOptions {
  readonly config?: string;
  readonly node?: string;
  readonly api?: string;
  readonly tokenFile?: string;
}

export class CliError extends Error {
  /** the process's exit code (vigil verify keeps 1 for "the copies differ" and exits 2 on errors) */
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Talks to a node's admin API: this node's (from the config) or the one given with --api. */
export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string,
    /** the CA an https:// API is checked against (api.tls.ca, or the cluster's self-signed api.tls.cert) */
    private readonly ca?: Buffer,
  ) {}

  static resolve(o: ClientOptions): ApiClient {
    let token = process.env.VIGIL_TOKEN;
    if (o.tokenFile) token = readToken(o.tokenFile);
    let base = o.api;
    let ca: Buffer | undefined;
    if (!base || !token || base.startsWith('https:')) {
      const file = o.config ?? DEFAULT_CONFIG_FILE;
      let config;
      try {
        config = loadConfig(file, { skipFileChecks: true });
      } catch (e) {
        if (!base || !token) throw new CliError(`${(e as Error).message.split('\n')[0]}${o.api ? '' : ' (or pass --api URL)'}`);
      }
      if (config) {
        token ??= readToken(config.api.admin_token_file);
        const tls = config.api.tls;
        if (tls) ca = readFileSync(tls.ca ?? tls.cert);
        if (!base) {
          const self = selectNode(config, o.node);
          const host = (config.api.listen ?? self.addrs)[0];
          base = `${tls ? 'https' : 'http'}://${isIPv6(host) ? `[${host}]` : host}:${config.api.port}`;
        }
      }
    }
    return new ApiClient(base!.replace(/\/+$/, ''), token!, ca);
  }

  /** timeoutMs: listing a large replicated tree (vigil verify) takes longer than a command */
  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
    if (this.base.startsWith('https:')) return this.requestTls<T>(method, path, body, timeoutMs);
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
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

  private async requestTls<T>(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: T }> {
    let r: { status: number; text: string };
    try {
      r = await requestApi(`${this.base}/api/v1${path}`, { method, token: this.token, body, ca: this.ca, timeoutMs });
    } catch (e) {
      throw new CliError(`cannot reach the vigil daemon at ${this.base} (${(e as Error).message}): is it running${this.ca ? '' : ', and is api.tls in the --config given'}?`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.text);
    } catch {
      throw new CliError(`${this.base} answered ${r.status} with a body that is not JSON`);
    }
    if (r.status === 401 || r.status === 403) throw new CliError(`${this.base}: ${(parsed as { error: string }).error}`);
    return { status: r.status, body: parsed as T };
  }
}

function readToken(file: string): string {
  try {
    // a token file may hold several tokens (one per line, # comments): the first one is used
    return readTokenFile(file)[0] ?? '';
  } catch (e) {
    throw new CliError(`cannot read the admin token ${file} (${(e as NodeJS.ErrnoException).code}): run as root or pass --token-file`);
  }
}
