/**
 * A minimal TokenCredential for Azure Functions / App Service managed identity, so the function needs no
 * extra package: the platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER; the token for the ARM scope
 * is fetched from there and cached until 5 minutes before it expires.
 * AZURE_CLIENT_ID selects a user-assigned identity. (Outside Azure, use @azure/identity's
 * DefaultAzureCredential and pass it to createAzureAdapter yourself.)
 */
import type { AccessToken, TokenCredential } from '@azure/core-auth';

export class ManagedIdentityCredential implements TokenCredential {
  private cached: AccessToken | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env, private readonly doFetch: typeof fetch = fetch) {}

  async getToken(scopes: string | string[]): Promise<AccessToken> {
    if (this.cached && this.cached.expiresOnTimestamp - 300_000 > Date.now()) return this.cached;
    const endpoint = this.env.IDENTITY_ENDPOINT;
    const header = this.env.IDENTITY_HEADER;
    if (!endpoint || !header) throw new Error('no managed identity: IDENTITY_ENDPOINT / IDENTITY_HEADER are not set (enable the function app\'s identity)');
    const scope = Array.isArray(scopes) ? scopes[0] : scopes;
    const url = new URL(endpoint);
    url.searchParams.set('resource', scope.replace(/\/\.default$/, '/'));
    url.searchParams.set('api-version', '2019-08-01');
    if (this.env.AZURE_CLIENT_ID) url.searchParams.set('client_id', this.env.AZURE_CLIENT_ID);
    const res = await this.doFetch(url, { headers: { 'X-IDENTITY-HEADER': header }, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`managed identity token request failed: HTTP ${res.status}`);
    const body = (await res.json()) as { access_token: string; expires_on: string | number };
    this.cached = { token: body.access_token, expiresOnTimestamp: Number(body.expires_on) * 1000 };
    return this.cached;
  }
}
