/**
 * Azure deployable: an ARM template (deploy with `az deployment group create`) for a Vigil mirror or
 * farm cluster, generated from the same config code as the CDK constructs.
 *
 *   VNet + subnet (NSG, NAT gateway for package installs) · Standard Load Balancer (public or
 *   internal frontend) whose probe and rule come from cloud-adapters' probe settings · one zonal
 *   Ubuntu 24.04 VM per node with a static private IP, bootstrapped by cloud-init custom data ·
 *   Key Vault (RBAC) holding the cluster secret and admin token, read by each VM's managed identity.
 *
 * The package tarball is not embedded: upload `npm pack`'s output (e.g. to a blob container) and
 * pass its URL (a SAS URL for a private container) as `packageUrl`.
 */
import { bootstrapScript, PACKAGE_PATH } from '../common/bootstrap.ts';
import { arbiterPackages, VIGIL_PATHS, type ModuleMode } from '../common/cluster-config.ts';
import { planCluster, type ClusterPlan, type CloudClusterOptions } from '../common/cloud-plan.ts';
import { hostAt, parseIpv4Cidr } from '../common/ip.ts';
import { azureNames } from '../../cloud-adapters/src/layout.ts';

export interface AzureClusterOptions extends CloudClusterOptions {
  /** the function's VNet-integration subnet (delegated to Microsoft.App/environments) @default 10.10.2.0/24 */
  readonly functionSubnetCidr?: string;
  /** address space of the new VNet @default 10.10.0.0/16 */
  readonly vnetCidr?: string;
  /** nodes' subnet @default 10.10.1.0/24 */
  readonly subnetCidr?: string;
}

export type ArmTemplate = {
  $schema: string;
  contentVersion: string;
  metadata: Record<string, unknown>;
  parameters: Record<string, Record<string, unknown>>;
  variables: Record<string, unknown>;
  resources: Record<string, any>[];
  outputs: Record<string, unknown>;
};

/** current apiVersions (each checked against Microsoft's schema for it: test/unit/infra-schemas.test.ts) */
export const AZURE_API_VERSIONS = {
  network: '2025-07-01',
  compute: '2025-04-01',
  keyVault: '2026-02-01',
  web: '2024-11-01',
  storage: '2025-06-01',
  authorization: '2022-04-01',
} as const;
const NET_API = AZURE_API_VERSIONS.network;
const VM_API = AZURE_API_VERSIONS.compute;
const KV_API = AZURE_API_VERSIONS.keyVault;
const WEB_API = AZURE_API_VERSIONS.web;
const ST_API = AZURE_API_VERSIONS.storage;
const AUTH_API = AZURE_API_VERSIONS.authorization;
/** built-in role "Storage Blob Data Owner" (the function host's identity-based storage and its package) */
const BLOB_OWNER = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b';
const EVENTS_URL = '__VIGIL_EVENTS_URL__';
/** built-in role "Key Vault Secrets User" */
const KV_SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';
const KV_HOST = '__VIGIL_KV_HOST__';
/** the arbiter lease (module.arbiter): a container of the template's storage account, written by the
 *  VMs' identities ("Storage Blob Data Contributor" on that container only); its URL in cluster.yaml
 *  is this placeholder until deployment */
const LEASE_URL = 'https://vigil-lease-account.blob.core.windows.net';
const LEASE_CONTAINER = 'vigil-leases';
const BLOB_CONTRIBUTOR = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe';
const PKG_URL = '__VIGIL_PACKAGE_URL__';
const PKG_SHA = '__VIGIL_PACKAGE_SHA256__';

export const AZURE_SECRET_NAMES = {
  cluster: 'vigil-cluster-secret',
  adminToken: 'vigil-admin-token',
  events: 'vigil-events-secret',
  /** rotation: copy the current events secret here, then set a new current one; both are valid */
  eventsPrevious: 'vigil-events-secret-previous',
} as const;

const id = (type: string, ...names: string[]) => `[resourceId('${type}', ${names.map((n) => `'${n}'`).join(', ')})]`;

function bootstrap(plan: ClusterPlan, o: AzureClusterOptions): string {
  return bootstrapScript({
    prelude: [
      '# Key Vault secrets through the VM managed identity (the role assignment may take a few minutes to apply)',
      'vigil_kv_secret() {',
      '  local tok',
      '  for _ in $(seq 1 60); do',
      '    tok=$(curl -fsS -H Metadata:true "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" | node -e \'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).access_token))\') &&',
      `      curl -fsS -H "Authorization: Bearer $tok" "https://${KV_HOST}/secrets/$1?api-version=7.4" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).value))' && return 0`,
      '    sleep 10',
      '  done',
      '  echo "cannot read Key Vault secret $1" >&2; return 1',
      '}',
    ],
    extraPackages: arbiterPackages(plan.raw),
    fetchPackage: [
      `curl -fsSL --retry 5 -o ${PACKAGE_PATH} '${PKG_URL}'`,
      `if [ -n '${PKG_SHA}' ]; then echo '${PKG_SHA}  ${PACKAGE_PATH}' | sha256sum -c -; fi`,
    ],
    secrets: [
      { path: VIGIL_PATHS.secret, command: `vigil_kv_secret ${AZURE_SECRET_NAMES.cluster}` },
      { path: VIGIL_PATHS.adminToken, command: `vigil_kv_secret ${AZURE_SECRET_NAMES.adminToken}` },
      { path: VIGIL_PATHS.eventsSecret, command: `vigil_kv_secret ${AZURE_SECRET_NAMES.events}` },
    ],
    clusterYaml: plan.yaml,
    scripts: plan.raw.modules?.[0]?.scripts_dir && o.module?.scripts ? { [plan.moduleName]: o.module.scripts } : undefined,
    preStart: o.preStartCommands,
    nodeVersion: o.nodeVersion,
  });
}

/** A static Standard public IP. No zones: Standard public IPs are zone-redundant by default where the region has zones. */
function publicIp(name: string): Record<string, unknown> {
  return {
    type: 'Microsoft.Network/publicIPAddresses',
    apiVersion: NET_API,
    name,
    location: "[parameters('location')]",
    sku: { name: 'Standard' },
    properties: { publicIPAllocationMethod: 'Static' },
  };
}

export function azureClusterTemplate(mode: ModuleMode, o: AzureClusterOptions = {}): { template: ArmTemplate; plan: ClusterPlan } {
  const vnetCidr = o.vnetCidr ?? '10.10.0.0/16';
  const subnetCidr = o.subnetCidr ?? '10.10.1.0/24';
  const v = parseIpv4Cidr(vnetCidr);
  const s = parseIpv4Cidr(subnetCidr);
  if (s.network < v.network || s.network + s.size > v.network + v.size) throw new Error(`subnetCidr ${subnetCidr} is not inside vnetCidr ${vnetCidr}`);
  const functionSubnetCidr = o.functionSubnetCidr ?? '10.10.2.0/24';
  const plan = planCluster(mode, { ...o, subnetCidr }, { subnetCidr, reserved: { first: 4, last: 1 }, eventsUrl: EVENTS_URL, arbiter: { type: 'azure-blob', account_url: LEASE_URL, container: LEASE_CONTAINER } });
  const lease = plan.raw.modules?.[0]?.arbiter !== undefined;
  const c = plan.cluster;
  const az = plan.probe.azure;
  // load balancer names: the same functions the adapter reconciles with (layout.ts)
  const lbNames = azureNames(c, plan.moduleName);
  const names = {
    vnet: `${c}-vnet`,
    subnet: 'nodes',
    fnSubnet: 'function',
    nsg: `${c}-nsg`,
    nat: `${c}-nat`,
    natIp: `${c}-nat-ip`,
    lb: lbNames.loadBalancer,
    lbIp: `${c}-vip`,
    pool: lbNames.backendPool,
    probe: lbNames.probe,
    frontend: lbNames.frontend,
    rule: lbNames.rule('Tcp', plan.listenerPort),
  };
  const nodeIps = plan.nodes.map((n) => n.addr);
  /** the internal frontend's private address (with loadBalancerType Internal) */
  const vipPrivate = hostAt(subnetCidr, 100);
  const subnetId = id('Microsoft.Network/virtualNetworks/subnets', names.vnet, names.subnet);
  const lbId = (sub: string, n: string) => `[resourceId('Microsoft.Network/loadBalancers/${sub}', '${names.lb}', '${n}')]`;
  const isPublic = "equals(parameters('loadBalancerType'), 'Public')";

  // NSG: explicit allows, then an explicit deny of the cluster ports from anything else in the VNet
  // (Azure's default AllowVnetInBound would otherwise let every VNet host reach them).
  const rules: Record<string, any>[] = [];
  let prio = 100;
  const rule = (name: string, access: 'Allow' | 'Deny', protocol: 'Tcp' | 'Udp', ports: string, src: { prefix?: string; prefixes?: string[] }, description: string) =>
    rules.push({
      name,
      properties: {
        description,
        priority: (prio += 10),
        direction: 'Inbound',
        access,
        protocol,
        sourcePortRange: '*',
        ...(src.prefixes ? { sourceAddressPrefixes: src.prefixes } : { sourceAddressPrefix: src.prefix }),
        ...(access === 'Allow' ? { destinationAddressPrefixes: nodeIps } : { destinationAddressPrefix: '*' }),
        destinationPortRange: ports,
      },
    });
  const range = (r: readonly [number, number]) => `${r[0]}-${r[1]}`;
  rule('vigil-heartbeat', 'Allow', 'Udp', String(plan.internal.heartbeatUdp), { prefixes: nodeIps }, 'Vigil heartbeat between the nodes');
  if (plan.internal.tcp) rule('vigil-replication', 'Allow', 'Tcp', range(plan.internal.tcp), { prefixes: nodeIps }, 'Vigil replication between the nodes');
  if (plan.internal.udp) rule('vigil-farm', 'Allow', 'Udp', range(plan.internal.udp), { prefixes: nodeIps }, 'Vigil farm membership between the nodes');
  rule('vigil-api-nodes', 'Allow', 'Tcp', String(plan.healthPort), { prefixes: nodeIps }, 'Vigil API between the nodes');
  rule('vigil-health-probe', 'Allow', 'Tcp', String(plan.healthPort), { prefix: az.sourceAddress }, 'Azure Load Balancer health probes (ready.txt)');
  rule('app-clients', 'Allow', 'Tcp', String(plan.listenerPort), { prefix: "[parameters('clientAddressPrefix')]" }, 'application clients');
  prio = 3990;
  rule('deny-vigil-heartbeat', 'Deny', 'Udp', String(plan.internal.heartbeatUdp), { prefix: '*' }, 'cluster ports: nodes only');
  if (plan.internal.tcp) rule('deny-vigil-replication', 'Deny', 'Tcp', range(plan.internal.tcp), { prefix: '*' }, 'cluster ports: nodes only');
  if (plan.internal.udp) rule('deny-vigil-farm', 'Deny', 'Udp', range(plan.internal.udp), { prefix: '*' }, 'cluster ports: nodes only');
  rule('deny-vigil-api', 'Deny', 'Tcp', String(plan.healthPort), { prefix: '*' }, 'health/API port: nodes and probes only');

  const script = bootstrap(plan, o);
  const resources: Record<string, any>[] = [
    {
      type: 'Microsoft.Network/networkSecurityGroups',
      apiVersion: NET_API,
      name: names.nsg,
      location: "[parameters('location')]",
      properties: { securityRules: rules },
    },
    publicIp(names.natIp),
    {
      type: 'Microsoft.Network/natGateways',
      apiVersion: NET_API,
      name: names.nat,
      location: "[parameters('location')]",
      sku: { name: 'Standard' },
      dependsOn: [id('Microsoft.Network/publicIPAddresses', names.natIp)],
      properties: { idleTimeoutInMinutes: 4, publicIpAddresses: [{ id: id('Microsoft.Network/publicIPAddresses', names.natIp) }] },
    },
    {
      type: 'Microsoft.Network/virtualNetworks',
      apiVersion: NET_API,
      name: names.vnet,
      location: "[parameters('location')]",
      dependsOn: [id('Microsoft.Network/networkSecurityGroups', names.nsg), id('Microsoft.Network/natGateways', names.nat)],
      properties: {
        addressSpace: { addressPrefixes: [vnetCidr] },
        subnets: [
          {
            name: names.subnet,
            properties: {
              addressPrefix: subnetCidr,
              networkSecurityGroup: { id: id('Microsoft.Network/networkSecurityGroups', names.nsg) },
              natGateway: { id: id('Microsoft.Network/natGateways', names.nat) },
              defaultOutboundAccess: false,
            },
          },
          {
            // the function's outbound VNet integration (Flex Consumption): it reads the nodes' ready.txt
            name: names.fnSubnet,
            properties: {
              addressPrefix: functionSubnetCidr,
              delegations: [{ name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }],
              natGateway: { id: id('Microsoft.Network/natGateways', names.nat) },
              defaultOutboundAccess: false,
            },
          },
        ],
      },
    },
    { condition: `[${isPublic}]`, ...publicIp(names.lbIp) },
    {
      type: 'Microsoft.Network/loadBalancers',
      apiVersion: NET_API,
      name: names.lb,
      location: "[parameters('location')]",
      sku: { name: 'Standard' },
      dependsOn: [id('Microsoft.Network/virtualNetworks', names.vnet), id('Microsoft.Network/publicIPAddresses', names.lbIp)],
      properties: {
        frontendIPConfigurations: [
          {
            name: names.frontend,
            properties: `[if(${isPublic}, createObject('publicIPAddress', createObject('id', resourceId('Microsoft.Network/publicIPAddresses', '${names.lbIp}'))), createObject('subnet', createObject('id', resourceId('Microsoft.Network/virtualNetworks/subnets', '${names.vnet}', '${names.subnet}')), 'privateIPAllocationMethod', 'Static', 'privateIPAddress', '${vipPrivate}'))]`,
          },
        ],
        // IP-based pool (addresses + VNet), the kind the adapter manages; NICs do not reference it
        backendAddressPools: [
          {
            name: names.pool,
            properties: {
              loadBalancerBackendAddresses: plan.nodes.map((n) => ({
                name: n.name,
                properties: { ipAddress: n.addr, virtualNetwork: { id: id('Microsoft.Network/virtualNetworks', names.vnet) }, adminState: 'None' },
              })),
            },
          },
        ],
        probes: [
          {
            name: names.probe,
            properties: {
              protocol: az.protocol,
              port: az.port,
              requestPath: az.requestPath,
              intervalInSeconds: az.intervalInSeconds,
              probeThreshold: az.probeThreshold,
              noHealthyBackendsBehavior: az.noHealthyBackendsBehavior,
            },
          },
        ],
        loadBalancingRules: [
          {
            name: names.rule,
            properties: {
              frontendIPConfiguration: { id: lbId('frontendIPConfigurations', names.frontend) },
              backendAddressPool: { id: lbId('backendAddressPools', names.pool) },
              probe: { id: lbId('probes', names.probe) },
              protocol: 'Tcp',
              frontendPort: plan.listenerPort,
              backendPort: plan.listenerPort,
              enableFloatingIP: false,
              enableTcpReset: true,
              idleTimeoutInMinutes: 4,
              disableOutboundSnat: true,
              loadDistribution: 'Default',
            },
          },
        ],
      },
    },
    {
      type: 'Microsoft.KeyVault/vaults',
      apiVersion: KV_API,
      name: "[variables('vaultName')]",
      location: "[parameters('location')]",
      properties: {
        tenantId: '[subscription().tenantId]',
        sku: { family: 'A', name: 'standard' },
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: 7,
        publicNetworkAccess: 'Enabled',
      },
    },
    {
      type: 'Microsoft.KeyVault/vaults/secrets',
      apiVersion: KV_API,
      name: `[format('{0}/${AZURE_SECRET_NAMES.cluster}', variables('vaultName'))]`,
      dependsOn: ["[resourceId('Microsoft.KeyVault/vaults', variables('vaultName'))]"],
      properties: { value: "[parameters('clusterSecret')]" },
    },
    {
      type: 'Microsoft.KeyVault/vaults/secrets',
      apiVersion: KV_API,
      name: `[format('{0}/${AZURE_SECRET_NAMES.adminToken}', variables('vaultName'))]`,
      dependsOn: ["[resourceId('Microsoft.KeyVault/vaults', variables('vaultName'))]"],
      properties: { value: "[parameters('adminToken')]" },
    },
  ];

  plan.nodes.forEach((n, i) => {
    const vm = `${c}-${n.name}`;
    const nic = `${vm}-nic`;
    resources.push(
      {
        type: 'Microsoft.Network/networkInterfaces',
        apiVersion: NET_API,
        name: nic,
        location: "[parameters('location')]",
        dependsOn: [id('Microsoft.Network/virtualNetworks', names.vnet)],
        properties: {
          ipConfigurations: [
            {
              name: 'ipconfig1',
              properties: {
                privateIPAllocationMethod: 'Static',
                privateIPAddress: n.addr,
                subnet: { id: subnetId },
              },
            },
          ],
        },
      },
      {
        type: 'Microsoft.Compute/virtualMachines',
        apiVersion: VM_API,
        name: vm,
        location: "[parameters('location')]",
        zones: [`[parameters('zones')[mod(${i}, length(parameters('zones')))]]`],
        identity: { type: 'SystemAssigned' },
        dependsOn: [id('Microsoft.Network/networkInterfaces', nic), "[resourceId('Microsoft.KeyVault/vaults', variables('vaultName'))]"],
        tags: { 'vigil-cluster': c, 'vigil-node': n.name },
        properties: {
          hardwareProfile: { vmSize: "[parameters('vmSize')]" },
          storageProfile: {
            imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' },
            osDisk: { createOption: 'FromImage', managedDisk: { storageAccountType: 'StandardSSD_LRS' }, deleteOption: 'Delete' },
          },
          osProfile: {
            computerName: vm,
            adminUsername: "[parameters('adminUsername')]",
            customData: "[base64(variables('bootstrap'))]",
            linuxConfiguration: {
              disablePasswordAuthentication: true,
              ssh: { publicKeys: [{ path: "[format('/home/{0}/.ssh/authorized_keys', parameters('adminUsername'))]", keyData: "[parameters('adminSshPublicKey')]" }] },
            },
          },
          networkProfile: { networkInterfaces: [{ id: id('Microsoft.Network/networkInterfaces', nic), properties: { deleteOption: 'Delete' } }] },
          diagnosticsProfile: { bootDiagnostics: { enabled: true } },
        },
      },
      {
        type: 'Microsoft.Authorization/roleAssignments',
        apiVersion: AUTH_API,
        scope: "[format('Microsoft.KeyVault/vaults/{0}', variables('vaultName'))]",
        name: `[guid(resourceId('Microsoft.KeyVault/vaults', variables('vaultName')), '${vm}', '${KV_SECRETS_USER}')]`,
        dependsOn: ["[resourceId('Microsoft.KeyVault/vaults', variables('vaultName'))]", id('Microsoft.Compute/virtualMachines', vm)],
        properties: {
          roleDefinitionId: `[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${KV_SECRETS_USER}')]`,
          principalId: `[reference(resourceId('Microsoft.Compute/virtualMachines', '${vm}'), '${VM_API}', 'full').identity.principalId]`,
          principalType: 'ServicePrincipal',
        },
      },
    );
  });

  resources.push(...functionResources(plan, names));
  if (lease) resources.push(...leaseResources(plan.nodes.map((n) => `${c}-${n.name}`)));

  const template: ArmTemplate = {
    $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
    contentVersion: '1.0.0.0',
    metadata: { description: `Vigil ${mode} cluster "${c}" (generated by infra/azure/arm-template.ts; do not edit)`, vigil: { mode, module: plan.moduleName, nodes: plan.nodes } },
    parameters: {
      location: { type: 'string', defaultValue: '[resourceGroup().location]', metadata: { description: 'Azure region' } },
      zones: { type: 'array', defaultValue: ['1', '2', '3'], metadata: { description: 'availability zones; node i goes to zones[i mod n]' } },
      vmSize: { type: 'string', defaultValue: 'Standard_B2s', metadata: { description: 'VM size of the nodes' } },
      adminUsername: { type: 'string', defaultValue: 'vigil', metadata: { description: 'Linux admin user (SSH key only)' } },
      adminSshPublicKey: { type: 'string', metadata: { description: 'SSH public key of the admin user' } },
      packageUrl: { type: 'string', metadata: { description: "URL of the project's npm pack tarball (e.g. a blob SAS URL)" } },
      packageSha256: { type: 'string', defaultValue: '', metadata: { description: 'SHA-256 of the tarball, checked when set' } },
      clusterSecret: { type: 'securestring', minLength: 16, metadata: { description: 'cluster secret (heartbeat and replication authentication), e.g. openssl rand -base64 32' } },
      adminToken: { type: 'securestring', minLength: 16, metadata: { description: 'admin API bearer token' } },
      eventsSecret: { type: 'securestring', minLength: 16, metadata: { description: "signs the nodes' state-change events to the function" } },
      functionMaxInstances: { type: 'int', defaultValue: 40, minValue: 40, maxValue: 1000, metadata: { description: 'cap on function instances (its events URL is open; events are signed)' } },
      loadBalancerType: { type: 'string', defaultValue: 'Internal', allowedValues: ['Internal', 'Public'], metadata: { description: 'Internal (private VIP in the subnet) or Public (public IP)' } },
      clientAddressPrefix: {
        type: 'string',
        defaultValue: 'VirtualNetwork',
        metadata: { description: "who may reach the application port: a CIDR or a service tag ('Internet' only for a public service)" },
      },
    },
    variables: {
      vaultName: `[format('vigil{0}', uniqueString(resourceGroup().id, '${c}'))]`,
      functionAppName: `[format('${c}-fn-{0}', uniqueString(resourceGroup().id, '${c}'))]`,
      storageName: `[format('vigilfn{0}', uniqueString(resourceGroup().id, '${c}'))]`,
      eventsUrl: "[format('https://{0}.azurewebsites.net/api/events', variables('functionAppName'))]",
      bootstrap: `[replace(replace(replace(replace(replace(variables('bootstrapTemplate'), '${LEASE_URL}', format('https://{0}.blob.{1}', variables('storageName'), environment().suffixes.storage)), '${KV_HOST}', format('{0}{1}', variables('vaultName'), environment().suffixes.keyvaultDns)), '${PKG_URL}', parameters('packageUrl')), '${PKG_SHA}', parameters('packageSha256')), '${EVENTS_URL}', variables('eventsUrl'))]`,
      functionsConfig: `[replace(replace(variables('functionsConfigTemplate'), '__SUB__', subscription().subscriptionId), '__RG__', resourceGroup().name)]`,
      functionsConfigTemplate: JSON.stringify(functionsConfig(plan, names)),
      bootstrapTemplate: script,
    },
    resources,
    outputs: {
      vipAddress: {
        type: 'string',
        value: `[if(${isPublic}, reference(resourceId('Microsoft.Network/publicIPAddresses', '${names.lbIp}'), '${NET_API}').ipAddress, '${vipPrivate}')]`,
      },
      healthUrls: { type: 'array', value: plan.nodes.map((n) => `http://${n.addr}:${plan.healthPort}${plan.probe.path}`) },
      keyVaultName: { type: 'string', value: "[variables('vaultName')]" },
      loadBalancerId: { type: 'string', value: id('Microsoft.Network/loadBalancers', names.lb) },
      backendPoolId: { type: 'string', value: lbId('backendAddressPools', names.pool) },
      probeId: { type: 'string', value: lbId('probes', names.probe) },
      functionAppName: { type: 'string', value: "[variables('functionAppName')]" },
      eventsUrl: { type: 'string', value: "[variables('eventsUrl')]" },
    },
  };
  if (script.startsWith('[')) throw new Error('bootstrap script must not start with "[" (ARM expression syntax)');
  return { template, plan };
}

type Names = { vnet: string; lb: string; pool: string; probe: string; frontend: string; rule: string; fnSubnet: string };

/** The function's configuration (functions/src/config.ts), as the nodes' load balancer is built. */
export function functionsConfig(plan: ClusterPlan, names: Names) {
  return {
    clusters: {
      [plan.cluster]: {
        healthPort: plan.healthPort,
        // Key Vault references in the app settings: never in the template, rotation without redeploy
        eventSecretEnv: 'VIGIL_EVENT_SECRET',
        adminTokenEnv: 'VIGIL_ADMIN_TOKEN',
        nodes: plan.nodes.map((n) => ({ name: n.name, address: n.addr })),
        modules: [
          {
            name: plan.moduleName,
            mode: plan.mode,
            cloud: {
              provider: 'azure',
              subscriptionId: '__SUB__',
              resourceGroup: '__RG__',
              loadBalancer: names.lb,
              frontendIpConfiguration: names.frontend,
              backendPool: names.pool,
              virtualNetworkId: `/subscriptions/__SUB__/resourceGroups/__RG__/providers/Microsoft.Network/virtualNetworks/${names.vnet}`,
              probeName: names.probe,
              rules: [{ name: names.rule, protocol: 'Tcp', frontendPort: plan.listenerPort, backendPort: plan.listenerPort }],
            },
          },
        ],
      },
    },
  };
}

/** custom role: exactly what the adapter does to this load balancer (and joining the VNet for IP-based pool members) */
const FUNCTION_ROLE_ACTIONS = [
  'Microsoft.Network/loadBalancers/read',
  'Microsoft.Network/loadBalancers/write',
  'Microsoft.Network/loadBalancers/backendAddressPools/read',
  'Microsoft.Network/loadBalancers/backendAddressPools/write',
  'Microsoft.Network/loadBalancers/backendAddressPools/join/action',
  'Microsoft.Network/loadBalancers/loadBalancingRules/read',
  'Microsoft.Network/loadBalancers/loadBalancingRules/health/action',
  'Microsoft.Network/loadBalancers/probes/read',
  'Microsoft.Network/loadBalancers/probes/join/action',
  'Microsoft.Network/loadBalancers/frontendIPConfigurations/join/action',
  'Microsoft.Network/virtualNetworks/joinLoadBalancer/action',
  'Microsoft.Network/virtualNetworks/read',
];

/** The arbiter lease's container and, per VM identity, blob read/write on that container only. */
function leaseResources(vms: readonly string[]): Record<string, any>[] {
  const storage = "[resourceId('Microsoft.Storage/storageAccounts', variables('storageName'))]";
  const container = `[resourceId('Microsoft.Storage/storageAccounts/blobServices/containers', variables('storageName'), 'default', '${LEASE_CONTAINER}')]`;
  const scope = `[format('Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/${LEASE_CONTAINER}', variables('storageName'))]`;
  return [
    {
      type: 'Microsoft.Storage/storageAccounts/blobServices/containers',
      apiVersion: ST_API,
      name: `[format('{0}/default/${LEASE_CONTAINER}', variables('storageName'))]`,
      dependsOn: [storage],
      properties: { publicAccess: 'None' },
    },
    ...vms.map((vm) => ({
      type: 'Microsoft.Authorization/roleAssignments',
      apiVersion: AUTH_API,
      scope,
      name: `[guid(${container.slice(1, -1)}, '${vm}', '${BLOB_CONTRIBUTOR}')]`,
      dependsOn: [container, `[resourceId('Microsoft.Compute/virtualMachines', '${vm}')]`],
      properties: {
        roleDefinitionId: `[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${BLOB_CONTRIBUTOR}')]`,
        principalId: `[reference(resourceId('Microsoft.Compute/virtualMachines', '${vm}'), '${VM_API}', 'full').identity.principalId]`,
        principalType: 'ServicePrincipal',
      },
    })),
  ];
}

/**
 * The reconcile / status / events function: a Flex Consumption function app (instance cap, VNet
 * integration to reach the nodes), its system identity with a custom role on this load balancer and
 * its VNet only, Key Vault references for its secrets, the timer (in the code: every minute) and the
 * events URL the nodes post to.
 */
function functionResources(plan: ClusterPlan, names: Names): Record<string, any>[] {
  const site = "[resourceId('Microsoft.Web/sites', variables('functionAppName'))]";
  const vault = "[resourceId('Microsoft.KeyVault/vaults', variables('vaultName'))]";
  const storage = "[resourceId('Microsoft.Storage/storageAccounts', variables('storageName'))]";
  const principal = `[reference(resourceId('Microsoft.Web/sites', variables('functionAppName')), '${WEB_API}', 'full').identity.principalId]`;
  const roleName = `[guid(resourceGroup().id, '${plan.cluster}', 'vigil-function-lb')]`;
  const kvRef = (secret: string) => `[format('@Microsoft.KeyVault(VaultName={0};SecretName=${secret})', variables('vaultName'))]`;
  const assignment = (key: string, scope: string, role: string, dependsOn: string[]) => ({
    type: 'Microsoft.Authorization/roleAssignments',
    apiVersion: AUTH_API,
    scope,
    name: `[guid(${scope.startsWith('[') ? `'${scope}'` : `'${scope}'`}, '${plan.cluster}', '${key}')]`,
    dependsOn: [site, ...dependsOn],
    properties: { roleDefinitionId: role, principalId: principal, principalType: 'ServicePrincipal' },
  });
  return [
    {
      type: 'Microsoft.KeyVault/vaults/secrets',
      apiVersion: KV_API,
      name: `[format('{0}/${AZURE_SECRET_NAMES.events}', variables('vaultName'))]`,
      dependsOn: [vault],
      properties: { value: "[parameters('eventsSecret')]" },
    },
    {
      type: 'Microsoft.Storage/storageAccounts',
      apiVersion: ST_API,
      name: "[variables('storageName')]",
      location: "[parameters('location')]",
      sku: { name: 'Standard_LRS' },
      kind: 'StorageV2',
      properties: { allowBlobPublicAccess: false, allowSharedKeyAccess: false, minimumTlsVersion: 'TLS1_2', supportsHttpsTrafficOnly: true },
    },
    {
      type: 'Microsoft.Storage/storageAccounts/blobServices/containers',
      apiVersion: ST_API,
      name: "[format('{0}/default/deployments', variables('storageName'))]",
      dependsOn: [storage],
      properties: { publicAccess: 'None' },
    },
    {
      type: 'Microsoft.Web/serverfarms',
      apiVersion: WEB_API,
      name: "[format('{0}-plan', variables('functionAppName'))]",
      location: "[parameters('location')]",
      kind: 'functionapp',
      sku: { name: 'FC1', tier: 'FlexConsumption' },
      properties: { reserved: true },
    },
    {
      type: 'Microsoft.Web/sites',
      apiVersion: WEB_API,
      name: "[variables('functionAppName')]",
      location: "[parameters('location')]",
      kind: 'functionapp,linux',
      identity: { type: 'SystemAssigned' },
      dependsOn: [
        "[resourceId('Microsoft.Web/serverfarms', format('{0}-plan', variables('functionAppName')))]",
        storage,
        id('Microsoft.Network/virtualNetworks', names.vnet),
      ],
      properties: {
        serverFarmId: "[resourceId('Microsoft.Web/serverfarms', format('{0}-plan', variables('functionAppName')))]",
        httpsOnly: true,
        virtualNetworkSubnetId: id('Microsoft.Network/virtualNetworks/subnets', names.vnet, names.fnSubnet),
        functionAppConfig: {
          // `az functionapp deployment source config-zip` puts infra/out/azure/function.zip here
          deployment: { storage: { type: 'blobContainer', value: `[format('{0}deployments', reference(${storage.slice(1, -1)}, '${ST_API}').primaryEndpoints.blob)]`, authentication: { type: 'SystemAssignedIdentity' } } },
          scaleAndConcurrency: { maximumInstanceCount: "[parameters('functionMaxInstances')]", instanceMemoryMB: 2048 },
          runtime: { name: 'node', version: '20' },
        },
        siteConfig: {
          minTlsVersion: '1.2',
          appSettings: [
            { name: 'AzureWebJobsStorage__accountName', value: "[variables('storageName')]" },
            { name: 'VIGIL_FUNCTIONS_CONFIG', value: "[variables('functionsConfig')]" },
            { name: 'VIGIL_EVENT_SECRET', value: kvRef(AZURE_SECRET_NAMES.events) },
            { name: 'VIGIL_EVENT_SECRET_PREVIOUS', value: kvRef(AZURE_SECRET_NAMES.eventsPrevious) },
            { name: 'VIGIL_ADMIN_TOKEN', value: kvRef(AZURE_SECRET_NAMES.adminToken) },
          ],
        },
      },
    },
    {
      type: 'Microsoft.Authorization/roleDefinitions',
      apiVersion: AUTH_API,
      name: roleName,
      properties: {
        roleName: `[format('Vigil load balancer ({0}, {1})', '${plan.cluster}', resourceGroup().name)]`,
        description: `What the Vigil function of ${plan.cluster} does to its load balancer`,
        type: 'customRole',
        permissions: [{ actions: FUNCTION_ROLE_ACTIONS, notActions: [] }],
        assignableScopes: ['[resourceGroup().id]'],
      },
    },
    assignment('lb', `Microsoft.Network/loadBalancers/${names.lb}`, `[resourceId('Microsoft.Authorization/roleDefinitions', guid(resourceGroup().id, '${plan.cluster}', 'vigil-function-lb'))]`, [
      id('Microsoft.Network/loadBalancers', names.lb),
      `[resourceId('Microsoft.Authorization/roleDefinitions', guid(resourceGroup().id, '${plan.cluster}', 'vigil-function-lb'))]`,
    ]),
    assignment('vnet', `Microsoft.Network/virtualNetworks/${names.vnet}`, `[resourceId('Microsoft.Authorization/roleDefinitions', guid(resourceGroup().id, '${plan.cluster}', 'vigil-function-lb'))]`, [
      id('Microsoft.Network/virtualNetworks', names.vnet),
      `[resourceId('Microsoft.Authorization/roleDefinitions', guid(resourceGroup().id, '${plan.cluster}', 'vigil-function-lb'))]`,
    ]),
    assignment('kv', "[format('Microsoft.KeyVault/vaults/{0}', variables('vaultName'))]", `[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${KV_SECRETS_USER}')]`, [vault]),
    assignment('blob', "[format('Microsoft.Storage/storageAccounts/{0}', variables('storageName'))]", `[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${BLOB_OWNER}')]`, [storage]),
  ];
}
