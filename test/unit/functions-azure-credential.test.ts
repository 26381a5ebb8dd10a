import { describe, expect, it } from 'vitest';
import { ManagedIdentityCredential } from '../../functions/src/azure-credential.ts';

describe('ManagedIdentityCredential (App Service / Functions identity endpoint)', () => {
  it('asks the identity endpoint for the ARM resource with the identity header, and caches the token', async () => {
    const calls: Array<{ url: string; headers: Record<string, string> }> = [];
    const f = (async (url: URL, init: RequestInit) => {
      calls.push({ url: String(url), headers: init.headers as Record<string, string> });
      return Response.json({ access_token: 'tok-1', expires_on: String(Math.floor(Date.now() / 1000) + 3600) });
    }) as unknown as typeof fetch;
    const cred = new ManagedIdentityCredential({ IDENTITY_ENDPOINT: 'http://127.0.0.1:41741/msi/token', IDENTITY_HEADER: 'hdr-secret', AZURE_CLIENT_ID: 'cid' }, f);
    const t = await cred.getToken('https://management.azure.com/.default');
    expect(t.token).toBe('tok-1');
    expect(await cred.getToken('https://management.azure.com/.default')).toBe(t);
    expect(calls).toHaveLength(1);
    const u = new URL(calls[0].url);
    expect([u.origin + u.pathname, u.searchParams.get('resource'), u.searchParams.get('api-version'), u.searchParams.get('client_id')]).toEqual([
      'http://127.0.0.1:41741/msi/token',
      'https://management.azure.com/',
      '2019-08-01',
      'cid',
    ]);
    expect(calls[0].headers['X-IDENTITY-HEADER']).toBe('hdr-secret');
  });

  it('says what is missing outside Azure', async () => {
    await expect(new ManagedIdentityCredential({}).getToken('https://management.azure.com/.default')).rejects.toThrow(/IDENTITY_ENDPOINT \/ IDENTITY_HEADER are not set/);
  });
});
