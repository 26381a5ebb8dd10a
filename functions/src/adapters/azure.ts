/** Production Azure adapter: NetworkManagementClient with the function app's managed identity. */
import { NetworkManagementClient } from '@azure/arm-network';
import { AzureLoadBalancerAdapter } from '../../../cloud-adapters/src/azure/adapter.ts';
import type { CloudAdapter, Desired } from '../../../cloud-adapters/src/types.ts';
import { ManagedIdentityCredential } from '../azure-credential.ts';
import type { ModuleResources } from '../controller.ts';

const clients = new Map<string, NetworkManagementClient>();

export function azureAdapterFor(desired: Desired<ModuleResources>): CloudAdapter {
  const r = desired.resources;
  if (r.provider !== 'azure') throw new Error(`not an Azure module: ${r.provider}`);
  let client = clients.get(r.subscriptionId);
  if (!client) {
    client = new NetworkManagementClient(new ManagedIdentityCredential(), r.subscriptionId);
    clients.set(r.subscriptionId, client);
  }
  return new AzureLoadBalancerAdapter(client, { ...desired, resources: r });
}
