import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureBlobLeaseStore } from '../../node-service/src/arbiter/azure-blob.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';

// The Azure Blob lease against Azurite (the storage emulator from npm), through the real SDK; the
// throttling and timeout paths against a server that answers 503 ServerBusy or never.
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const PORT = 25000 + (process.pid % 1000);
const URL_ = `http://127.0.0.1:${PORT}/${ACCOUNT}`;
const dir = mkdtempSync(join(tmpdir(), 'vigil-azurite-'));
const keyFile = join(dir, 'account.key');
writeFileSync(keyFile, KEY, { mode: 0o600 });
let azurite: ChildProcess;
let clock = 0;

function store(node: string, url = URL_, ttl = 15_000): AzureBlobLeaseStore {
  return new AzureBlobLeaseStore({ type: 'azure-blob', account_url: url, container: 'vigil-leases', account_key_file: keyFile, ttl }, { cluster: 'c1', module: 'db', node, log: silentLogger(), now: () => clock });
}
const blob = () => new BlobServiceClient(URL_, new StorageSharedKeyCredential(ACCOUNT, KEY)).getContainerClient('vigil-leases').getBlobClient('c1/db.lease');

describe('azure-blob lease store (Azurite)', () => {
  beforeAll(async () => {
    azurite = spawn(join(import.meta.dirname, '../../node_modules/.bin/azurite-blob'), ['--blobHost', '127.0.0.1', '--blobPort', String(PORT), '--inMemoryPersistence', '--silent', '--skipApiVersionCheck'], { stdio: 'ignore' });
    const service = new BlobServiceClient(URL_, new StorageSharedKeyCredential(ACCOUNT, KEY));
    for (let i = 0; ; i++) {
      try {
        await service.getContainerClient('vigil-leases').createIfNotExists();
        break;
      } catch (e) {
        if (i > 100) throw new Error(`azurite did not start on ${PORT}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }, 30_000);
  afterAll(() => {
    azurite?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('acquires a blob lease, records {node, gen} and the fence in the metadata; the peer gets 409 (taken) until it expires', async () => {
    const a = store('node1');
    const b = store('node2');
    expect(await a.claim(3, false)).toMatchObject({ outcome: 'held' });
    const p = await blob().getProperties();
    expect(p).toMatchObject({ leaseState: 'leased', leaseDuration: 'fixed', metadata: { node: 'node1', gen: '3', fence: '3' } });
    expect(await b.claim(3, false)).toMatchObject({ outcome: 'taken', holder: 'node1', gen: 3 });
    expect(await a.claim(4, false)).toMatchObject({ outcome: 'held' }); // renewal records the new generation
    expect((await blob().getProperties()).metadata).toMatchObject({ gen: '4', fence: '4' });
    // node1 dies: Azure Storage refuses node2 until the 15 s lease expired
    const t0 = Date.now();
    let answer = await b.claim(4, false);
    while (answer.outcome === 'taken' && Date.now() - t0 < 25_000) {
      await new Promise((r) => setTimeout(r, 500));
      answer = await b.claim(4, false);
    }
    expect(answer.outcome).toBe('held');
    expect(Date.now() - t0).toBeGreaterThan(10_000);
    // node1's renewal is refused (its lease id no longer holds the blob)
    expect(await a.claim(4, false)).toMatchObject({ outcome: 'taken', holder: 'node2' });
    await b.release();
  }, 40_000);

  it('release hands over at once; the fence stays and refuses an older generation; force overrides', async () => {
    const a = store('node1');
    const b = store('node2');
    expect(await a.claim(9, false)).toMatchObject({ outcome: 'held' });
    await a.release();
    expect(await b.claim(8, false)).toMatchObject({ outcome: 'fenced', gen: 9 });
    expect(await b.claim(8, true)).toMatchObject({ outcome: 'held' });
    expect((await blob().getProperties()).metadata).toMatchObject({ node: 'node2', fence: '8' });
    await b.release();
  });

  it('throttling (503 ServerBusy) and a store that never answers: unreachable, with the reason', async () => {
    let hang = false;
    const srv: Server = createServer((req, res) => {
      if (hang) return;
      res.writeHead(503, { 'x-ms-error-code': 'ServerBusy', 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>Egress is over the account limit.</Message></Error>');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/${ACCOUNT}`;
    try {
      expect(await store('node1', url).claim(1, false)).toMatchObject({ outcome: 'unreachable', reason: expect.stringMatching(/Azure Storage busy \(503 ServerBusy\)/) });
      hang = true;
      expect(await store('node1', url).claim(1, false)).toMatchObject({ outcome: 'unreachable', reason: 'no answer within 5000 ms' });
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  }, 20_000);
});
