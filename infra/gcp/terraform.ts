/**
 * GCP deployable: Terraform JSON (`*.tf.json`, google provider) for a Vigil mirror or farm cluster,
 * generated from the same config code as the CDK constructs.
 *
 *   VPC network + subnet, Cloud NAT (package installs) · passthrough Network Load Balancer (regional
 *   backend service, internal or external) whose health check comes from cloud-adapters' probe
 *   settings, one unmanaged instance group per node · one Ubuntu 24.04 VM per node (zones round
 *   robin) with a fixed internal IP and no external IP, bootstrapped by its startup script · firewall:
 *   cluster ports only between the nodes' tag, the health port from Google's probe ranges, the
 *   application port from `client_cidrs` · Secret Manager (cluster secret, admin token) and a bucket
 *   with the project's packed tarball (uploaded by Terraform), read by the nodes' service account.
 */
import { bootstrapScript, PACKAGE_PATH } from '../common/bootstrap.ts';
import { VIGIL_PATHS, type ModuleMode } from '../common/cluster-config.ts';
import { planCluster, type ClusterPlan, type CloudClusterOptions } from '../common/cloud-plan.ts';

export interface GcpClusterOptions extends CloudClusterOptions {
  /** nodes' subnet @default 10.20.1.0/24 */
  readonly subnetCidr?: string;
  /** file name of the package tarball next to the .tf.json (variable vigil_package_path's default) @default vigil.tgz */
  readonly packageFileName?: string;
}

export type TerraformJson = Record<string, any>;

/** Terraform interpolations cannot appear in generated shell text: escape "${" and "%{" then put ours back. */
function tfEscape(s: string): string {
  return s.replaceAll('${', () => '$${').replaceAll('%{', () => '%%{');
}

const BUCKET = '@@VIGIL_BUCKET@@';
const OBJECT = '@@VIGIL_OBJECT@@';
const PROJECT = '@@VIGIL_PROJECT@@';

export const GCP_SECRET_IDS = (cluster: string) => ({ cluster: `${cluster}-cluster-secret`, adminToken: `${cluster}-admin-token` });

function bootstrap(plan: ClusterPlan, o: GcpClusterOptions): string {
  const ids = GCP_SECRET_IDS(plan.cluster);
  const script = bootstrapScript({
    prelude: [
      'vigil_gcp_token() { curl -fsS -H "Metadata-Flavor: Google" http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token | node -e \'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).access_token))\'; }',
      'vigil_gcp_secret() {',
      '  for _ in $(seq 1 30); do',
      `    curl -fsS -H "Authorization: Bearer $(vigil_gcp_token)" "https://secretmanager.googleapis.com/v1/projects/${PROJECT}/secrets/$1/versions/latest:access" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(Buffer.from(JSON.parse(s).payload.data,"base64")))' && return 0`,
      '    sleep 10',
      '  done',
      '  echo "cannot read secret $1" >&2; return 1',
      '}',
    ],
    fetchPackage: [
      `for _ in $(seq 1 30); do curl -fsS -o ${PACKAGE_PATH} -H "Authorization: Bearer $(vigil_gcp_token)" "https://storage.googleapis.com/storage/v1/b/${BUCKET}/o/${OBJECT}?alt=media" && break; sleep 10; done`,
      `test -s ${PACKAGE_PATH}`,
    ],
    secrets: [
      { path: VIGIL_PATHS.secret, command: `vigil_gcp_secret ${ids.cluster}` },
      { path: VIGIL_PATHS.adminToken, command: `vigil_gcp_secret ${ids.adminToken}` },
    ],
    clusterYaml: plan.yaml,
    scripts: o.module?.scripts ? { [plan.moduleName]: o.module.scripts } : undefined,
    preStart: o.preStartCommands,
    nodeVersion: o.nodeVersion,
  });
  return tfEscape(script)
    .replaceAll(BUCKET, '${google_storage_bucket.package.name}')
    .replaceAll(OBJECT, '${urlencode(google_storage_bucket_object.package.name)}')
    .replaceAll(PROJECT, '${var.project}');
}

export function gcpClusterTerraform(mode: ModuleMode, o: GcpClusterOptions = {}): { tf: TerraformJson; plan: ClusterPlan } {
  const subnetCidr = o.subnetCidr ?? '10.20.1.0/24';
  // GCP reserves the first two and the last two addresses of a subnet
  // Passthrough load balancers probe the forwarding rule's address, which the guest agent routes to
  // the VM itself: the health port must listen on every address (the firewall still limits who reaches it).
  const plan = planCluster(mode, { ...o, subnetCidr }, { subnetCidr, reserved: { first: 2, last: 2 }, apiListen: ['0.0.0.0'] });
  const c = plan.cluster;
  const g = plan.probe.gcp;
  const tag = `${c}-node`;
  const ids = GCP_SECRET_IDS(c);
  const pkgFile = o.packageFileName ?? 'vigil.tgz';
  const scheme = '${var.internet_facing ? "EXTERNAL" : "INTERNAL"}';
  const range = (r: readonly [number, number]) => `${r[0]}-${r[1]}`;

  const instances: Record<string, any> = {};
  const groups: Record<string, any> = {};
  plan.nodes.forEach((n, i) => {
    const zone = `\${var.zones[${i} % length(var.zones)]}`;
    instances[n.name] = {
      name: `${c}-${n.name}`,
      machine_type: '${var.machine_type}',
      zone,
      tags: [tag],
      labels: { 'vigil-cluster': c, 'vigil-node': n.name },
      boot_disk: { initialize_params: { image: '${var.image}', size: 20, type: 'pd-balanced' } },
      network_interface: { subnetwork: '${google_compute_subnetwork.nodes.id}', network_ip: n.addr },
      service_account: { email: '${google_service_account.nodes.email}', scopes: ['cloud-platform'] },
      shielded_instance_config: { enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true },
      metadata: { 'enable-oslogin': 'TRUE', 'startup-script': '${local.bootstrap}' },
      allow_stopping_for_update: true,
      depends_on: [
        'google_secret_manager_secret_version.cluster',
        'google_secret_manager_secret_version.admin',
        'google_storage_bucket_iam_member.nodes',
        'google_secret_manager_secret_iam_member.cluster',
        'google_secret_manager_secret_iam_member.admin',
        'google_compute_router_nat.nat',
      ],
    };
    groups[n.name] = {
      name: `${c}-${n.name}`,
      zone,
      network: '${google_compute_network.vpc.id}',
      instances: [`\${google_compute_instance.${n.name}.id}`],
    };
  });

  const firewall: Record<string, any> = {
    cluster: {
      name: `${c}-cluster`,
      description: 'Vigil heartbeat, replication/farm and API: between the nodes only',
      network: '${google_compute_network.vpc.name}',
      direction: 'INGRESS',
      source_tags: [tag],
      target_tags: [tag],
      allow: [
        { protocol: 'udp', ports: [String(plan.internal.heartbeatUdp), ...(plan.internal.udp ? [range(plan.internal.udp)] : [])] },
        { protocol: 'tcp', ports: [String(plan.healthPort), ...(plan.internal.tcp ? [range(plan.internal.tcp)] : [])] },
      ],
    },
    health: {
      name: `${c}-health-probes`,
      description: "Google health checks to each node's ready.txt",
      network: '${google_compute_network.vpc.name}',
      direction: 'INGRESS',
      source_ranges: [...g.probeSourceRanges],
      target_tags: [tag],
      allow: [{ protocol: 'tcp', ports: [String(g.port)] }],
    },
    app: {
      name: `${c}-app`,
      description: 'application clients (client_cidrs)',
      network: '${google_compute_network.vpc.name}',
      direction: 'INGRESS',
      source_ranges: '${var.client_cidrs}',
      target_tags: [tag],
      allow: [{ protocol: 'tcp', ports: [String(plan.listenerPort)] }],
    },
    iap_ssh: {
      count: '${var.allow_iap_ssh ? 1 : 0}',
      name: `${c}-iap-ssh`,
      description: 'SSH through Identity-Aware Proxy only',
      network: '${google_compute_network.vpc.name}',
      direction: 'INGRESS',
      source_ranges: ['35.235.240.0/20'],
      target_tags: [tag],
      allow: [{ protocol: 'tcp', ports: ['22'] }],
    },
  };

  const tf: TerraformJson = {
    '//': `Vigil ${mode} cluster "${c}" (generated by infra/gcp/terraform.ts; do not edit)`,
    terraform: {
      required_version: '>= 1.5.0',
      required_providers: {
        google: { source: 'hashicorp/google', version: '>= 5.0, < 8.0' },
        random: { source: 'hashicorp/random', version: '>= 3.5' },
      },
    },
    provider: { google: { project: '${var.project}', region: '${var.region}' } },
    variable: {
      project: { type: 'string', description: 'GCP project id' },
      region: { type: 'string', default: 'europe-west1', description: 'region of the load balancer, subnet and VMs' },
      zones: { type: 'list(string)', default: ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'], description: 'zones of the region; node i goes to zones[i mod n]' },
      machine_type: { type: 'string', default: 'e2-small' },
      image: { type: 'string', default: 'ubuntu-os-cloud/ubuntu-2404-lts-amd64' },
      vigil_package_path: { type: 'string', default: `\${path.module}/${pkgFile}`, description: "the project's npm pack tarball" },
      internet_facing: { type: 'bool', default: false, description: 'external passthrough NLB instead of an internal one' },
      client_cidrs: { type: 'list(string)', default: ['10.20.0.0/16'], description: 'who may reach the application port ("0.0.0.0/0" only for a public service)' },
      allow_iap_ssh: { type: 'bool', default: true, description: 'allow SSH from IAP (35.235.240.0/20)' },
    },
    locals: { bootstrap: bootstrap(plan, o) },
    resource: {
      google_compute_network: { vpc: { name: `${c}-vpc`, auto_create_subnetworks: false } },
      google_compute_subnetwork: {
        nodes: { name: `${c}-nodes`, ip_cidr_range: subnetCidr, region: '${var.region}', network: '${google_compute_network.vpc.id}', private_ip_google_access: true },
      },
      google_compute_router: { router: { name: `${c}-router`, region: '${var.region}', network: '${google_compute_network.vpc.id}' } },
      google_compute_router_nat: {
        nat: {
          name: `${c}-nat`,
          router: '${google_compute_router.router.name}',
          region: '${var.region}',
          nat_ip_allocate_option: 'AUTO_ONLY',
          source_subnetwork_ip_ranges_to_nat: 'ALL_SUBNETWORKS_ALL_IP_RANGES',
        },
      },
      google_compute_firewall: firewall,
      google_service_account: { nodes: { account_id: `${c}-nodes`.slice(0, 30), display_name: `Vigil ${c} nodes` } },
      random_password: {
        cluster: { length: 48, special: false },
        admin: { length: 40, special: false },
      },
      google_secret_manager_secret: {
        cluster: { secret_id: ids.cluster, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
        admin: { secret_id: ids.adminToken, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
      },
      google_secret_manager_secret_version: {
        cluster: { secret: '${google_secret_manager_secret.cluster.id}', secret_data: '${random_password.cluster.result}' },
        admin: { secret: '${google_secret_manager_secret.admin.id}', secret_data: '${random_password.admin.result}' },
      },
      google_secret_manager_secret_iam_member: {
        cluster: { secret_id: '${google_secret_manager_secret.cluster.id}', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:${google_service_account.nodes.email}' },
        admin: { secret_id: '${google_secret_manager_secret.admin.id}', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:${google_service_account.nodes.email}' },
      },
      google_storage_bucket: {
        package: {
          name: `\${var.project}-${c}-package`,
          location: '${var.region}',
          uniform_bucket_level_access: true,
          public_access_prevention: 'enforced',
          force_destroy: true,
        },
      },
      google_storage_bucket_object: {
        package: { name: `vigil-\${filesha256(var.vigil_package_path)}.tgz`, bucket: '${google_storage_bucket.package.name}', source: '${var.vigil_package_path}' },
      },
      google_storage_bucket_iam_member: {
        nodes: { bucket: '${google_storage_bucket.package.name}', role: 'roles/storage.objectViewer', member: 'serviceAccount:${google_service_account.nodes.email}' },
      },
      google_compute_instance: instances,
      google_compute_instance_group: groups,
      google_compute_region_health_check: {
        ready: {
          name: `${c}-${plan.moduleName}-ready`,
          region: '${var.region}',
          check_interval_sec: g.checkIntervalSec,
          timeout_sec: g.timeoutSec,
          healthy_threshold: g.healthyThreshold,
          unhealthy_threshold: g.unhealthyThreshold,
          http_health_check: { port: g.port, request_path: g.requestPath },
          log_config: { enable: true },
        },
      },
      google_compute_region_backend_service: {
        vip: {
          name: `${c}-${plan.moduleName}`,
          region: '${var.region}',
          protocol: 'TCP',
          load_balancing_scheme: scheme,
          health_checks: ['${google_compute_region_health_check.ready.id}'],
          connection_draining_timeout_sec: 5,
          backend: plan.nodes.map((n) => ({ group: `\${google_compute_instance_group.${n.name}.id}`, balancing_mode: 'CONNECTION' })),
          ...(g.failoverPolicy
            ? {
                failover_policy: {
                  drop_traffic_if_unhealthy: g.failoverPolicy.dropTrafficIfUnhealthy,
                  disable_connection_drain_on_failover: g.failoverPolicy.disableConnectionDrainOnFailover,
                  failover_ratio: g.failoverPolicy.failoverRatio,
                },
              }
            : {}),
        },
      },
      google_compute_forwarding_rule: {
        vip: {
          name: `${c}-${plan.moduleName}-vip`,
          region: '${var.region}',
          load_balancing_scheme: scheme,
          backend_service: '${google_compute_region_backend_service.vip.id}',
          ip_protocol: 'TCP',
          ports: [String(plan.listenerPort)],
          network: '${var.internet_facing ? null : google_compute_network.vpc.id}',
          subnetwork: '${var.internet_facing ? null : google_compute_subnetwork.nodes.id}',
        },
      },
    },
    output: {
      vip_address: { value: '${google_compute_forwarding_rule.vip.ip_address}', description: 'the virtual IP (forwarding rule address)' },
      health_urls: { value: plan.nodes.map((n) => `http://${n.addr}:${plan.healthPort}${plan.probe.path}`), description: "each node's ready.txt (from inside the VPC)" },
      package_object: { value: 'gs://${google_storage_bucket.package.name}/${google_storage_bucket_object.package.name}' },
    },
  };
  return { tf, plan };
}
