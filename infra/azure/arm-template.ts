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
import { VIGIL_PATHS, type ModuleMode } from '../common/cluster-config.ts';
import { planCluster, type ClusterPlan, type CloudClusterOptions } from '../common/cloud-plan.ts';
import { hostAt, parseIpv4Cidr } from '../common/ip.ts';

export interface AzureClusterOptions extends CloudClusterOptions {
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

const NET_API = '2024-01-01';
const VM_API = '2024-03-01';
const KV_API = '2023-07-01';
/** built-in role "Key Vault Secrets User" */
const KV_SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';
const KV_HOST = '__VIGIL_KV_HOST__';
const PKG_URL = '__VIGIL_PACKAGE_URL__';
const PKG_SHA = '__VIGIL_PACKAGE_SHA256__';

export const AZURE_SECRET_NAMES = { cluster: 'vigil-cluster-secret', adminToken: 'vigil-admin-token' } as const;

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
    fetchPackage: [
      `curl -fsSL --retry 5 -o ${PACKAGE_PATH} '${PKG_URL}'`,
      `if [ -n '${PKG_SHA}' ]; then echo '${PKG_SHA}  ${PACKAGE_PATH}' | sha256sum -c -; fi`,
    ],
    secrets: [
      { path: VIGIL_PATHS.secret, command: `vigil_kv_secret ${AZURE_SECRET_NAMES.cluster}` },
      { path: VIGIL_PATHS.adminToken, command: `vigil_kv_secret ${AZURE_SECRET_NAMES.adminToken}` },
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
  const plan = planCluster(mode, { ...o, subnetCidr }, { subnetCidr, reserved: { first: 4, last: 1 } });
  const c = plan.cluster;
  const az = plan.probe.azure;
  const names = {
    vnet: `${c}-vnet`,
    subnet: 'nodes',
    nsg: `${c}-nsg`,
    nat: `${c}-nat`,
    natIp: `${c}-nat-ip`,
    lb: `${c}-lb`,
    lbIp: `${c}-vip`,
    pool: 'nodes',
    probe: `${plan.moduleName}-ready`,
    frontend: 'vip',
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
        backendAddressPools: [{ name: names.pool }],
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
            name: `${plan.moduleName}-tcp-${plan.listenerPort}`,
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
        dependsOn: [id('Microsoft.Network/virtualNetworks', names.vnet), id('Microsoft.Network/loadBalancers', names.lb)],
        properties: {
          ipConfigurations: [
            {
              name: 'ipconfig1',
              properties: {
                privateIPAllocationMethod: 'Static',
                privateIPAddress: n.addr,
                subnet: { id: subnetId },
                loadBalancerBackendAddressPools: [{ id: lbId('backendAddressPools', names.pool) }],
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
        apiVersion: '2022-04-01',
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
      loadBalancerType: { type: 'string', defaultValue: 'Internal', allowedValues: ['Internal', 'Public'], metadata: { description: 'Internal (private VIP in the subnet) or Public (public IP)' } },
      clientAddressPrefix: {
        type: 'string',
        defaultValue: 'VirtualNetwork',
        metadata: { description: "who may reach the application port: a CIDR or a service tag ('Internet' only for a public service)" },
      },
    },
    variables: {
      vaultName: `[format('vigil{0}', uniqueString(resourceGroup().id, '${c}'))]`,
      bootstrap: `[replace(replace(replace(variables('bootstrapTemplate'), '${KV_HOST}', format('{0}{1}', variables('vaultName'), environment().suffixes.keyvaultDns)), '${PKG_URL}', parameters('packageUrl')), '${PKG_SHA}', parameters('packageSha256'))]`,
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
    },
  };
  if (script.startsWith('[')) throw new Error('bootstrap script must not start with "[" (ARM expression syntax)');
  return { template, plan };
}
