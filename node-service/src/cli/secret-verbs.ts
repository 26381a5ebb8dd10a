import type { Command } from 'commander';
import type { KeyStatus } from '../secure/keyring.ts';
import { ApiClient, CliError, type ClientOptions } from './client.ts';

/** The rotation procedure, printed by `vigil secret --help` (README "Security" says the same). */
export const ROTATION_STEPS = `Rotating the cluster secret without downtime (no failover, no lost write):
  1. On every node: write the new secret (head -c 32 /dev/urandom | base64 > /etc/vigil/cluster.key.next;
     chmod 600), add "next_secret_file: /etc/vigil/cluster.key.next" to cluster.yaml, then
     vigil secret reload --all-nodes        every node now accepts both secrets, still sends with the old one
  2. On every node: swap the two files (mv cluster.key cluster.key.old; mv cluster.key.next cluster.key;
     mv cluster.key.old cluster.key.next), then
     vigil secret reload --all-nodes        every node sends with the new secret, still accepts the old one
  3. On every node: remove the next_secret_file line and the old file, then
     vigil secret reload --all-nodes        only the new secret is accepted
  Between steps, vigil secret status --all-nodes shows each node's key ids: go on when all agree.`;

function show(s: KeyStatus): string {
  return `sending with key ${s.sending}; accepting ${s.accepting.join(', ')}`;
}

export function registerSecretVerbs(program: Command, withClientOptions: (cmd: Command) => Command): void {
  const secret = program
    .command('secret')
    .description('the cluster secret: which keys this node uses, and reloading them during a rotation')
    .addHelpText('after', `\n${ROTATION_STEPS}`);
  withClientOptions(secret.command('status').description('print the key ids (not the keys) this node sends with and accepts')).action(async (o: ClientOptions) => {
    const r = await ApiClient.resolve(o).request<KeyStatus & { error?: string }>('GET', '/secret');
    if (r.status !== 200) throw new CliError(r.body.error ?? `HTTP ${r.status}`);
    console.log(show(r.body));
  });
  withClientOptions(
    secret
      .command('reload')
      .description('re-read secret_file and next_secret_file from the config on disk and use them at once (a rotation step; nothing else of the config is reloaded)')
      .addHelpText('after', `\n${ROTATION_STEPS}`),
  ).action(async (o: ClientOptions) => {
    const r = await ApiClient.resolve(o).request<KeyStatus & { error?: string }>('POST', '/secret/reload', {});
    if (r.status !== 200) throw new CliError(r.body.error ?? `HTTP ${r.status}`);
    console.log(`reloaded: ${show(r.body)}`);
  });
}
