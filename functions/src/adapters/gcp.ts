/** Production GCP adapter: Compute REST clients with Application Default Credentials (the function's service account). */
import {
  FirewallsClient,
  GlobalOperationsClient,
  InstanceGroupsClient,
  RegionBackendServicesClient,
  RegionHealthChecksClient,
  RegionOperationsClient,
  ZoneOperationsClient,
} from '@google-cloud/compute';
import { GcpLoadBalancerAdapter, type GcpClients } from '../../../cloud-adapters/src/gcp/adapter.ts';
import type { CloudAdapter, Desired } from '../../../cloud-adapters/src/types.ts';
import type { ModuleResources } from '../controller.ts';

let clients: GcpClients | undefined;

export function gcpAdapterFor(desired: Desired<ModuleResources>): CloudAdapter {
  const r = desired.resources;
  if (r.provider !== 'gcp') throw new Error(`not a GCP module: ${r.provider}`);
  clients ??= {
    regionHealthChecks: new RegionHealthChecksClient(),
    firewalls: new FirewallsClient(),
    regionBackendServices: new RegionBackendServicesClient(),
    instanceGroups: new InstanceGroupsClient(),
    regionOperations: new RegionOperationsClient(),
    globalOperations: new GlobalOperationsClient(),
    zoneOperations: new ZoneOperationsClient(),
  } as unknown as GcpClients;
  return new GcpLoadBalancerAdapter(clients, { ...desired, resources: r });
}
