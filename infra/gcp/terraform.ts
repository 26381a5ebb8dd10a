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
import { arbiterPackages, VIGIL_PATHS, type ModuleMode } from '../common/cluster-config.ts';
import { planCluster, type ClusterPlan, type CloudClusterOptions } from '../common/cloud-plan.ts';
import { gcpBackendRoles, gcpNames } from '../../cloud-adapters/src/layout.ts';

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
const EVENTS = 'https://vigil-events.invalid/events';
/** the lease bucket's name in cluster.yaml until Terraform knows it (a valid bucket name, for validation) */
const LEASE_BUCKET = 'vigil-lease-bucket-placeholder';

export const GCP_SECRET_IDS = (cluster: string) => ({
  cluster: `${cluster}-cluster-secret`,
  adminToken: `${cluster}-admin-token`,
  events: `${cluster}-events-secret`,
  eventsPrevious: `${cluster}-events-secret-previous`,
});

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
      { path: VIGIL_PATHS.eventsSecret, command: `vigil_gcp_secret ${ids.events}` },
    ],
    clusterYaml: plan.yaml,
    extraPackages: arbiterPackages(plan.raw),
    scripts: o.module?.scripts ? { [plan.moduleName]: o.module.scripts } : undefined,
    preStart: o.preStartCommands,
    nodeVersion: o.nodeVersion,
  });
  return tfEscape(script)
    .replaceAll(BUCKET, '${google_storage_bucket.package.name}')
    .replaceAll(OBJECT, '${urlencode(google_storage_bucket_object.package.name)}')
    .replaceAll(PROJECT, '${var.project}')
    .replaceAll(LEASE_BUCKET, '${google_storage_bucket.lease.name}')
    .replaceAll(EVENTS, '${google_cloudfunctions2_function.vigil.service_config[0].uri}/events');
}

export function gcpClusterTerraform(mode: ModuleMode, o: GcpClusterOptions = {}): { tf: TerraformJson; plan: ClusterPlan } {
  const subnetCidr = o.subnetCidr ?? '10.20.1.0/24';
  // GCP reserves the first two and the last two addresses of a subnet
  // Passthrough load balancers probe the forwarding rule's address, which the guest agent routes to
  // the VM itself: the health port must listen on every address (the firewall still limits who reaches it).
  const plan = planCluster(mode, { ...o, subnetCidr }, { subnetCidr, reserved: { first: 2, last: 2 }, apiListen: ['0.0.0.0'], eventsUrl: EVENTS, arbiter: { type: 'gcs', bucket: LEASE_BUCKET } });
  const lease = plan.raw.modules?.[0]?.arbiter !== undefined;
  const c = plan.cluster;
  const g = plan.probe.gcp;
  const ln = gcpNames(c, plan.moduleName);
  const tag = ln.targetTag;
  const roles = gcpBackendRoles(mode, plan.nodes.map((n) => n.name));
  const ids = GCP_SECRET_IDS(c);
  const pkgFile = o.packageFileName ?? 'vigil.tgz';
  const scheme = '${var.internet_facing ? "EXTERNAL" : "INTERNAL"}';
  const range = (r: readonly [number, number]) => `${r[0]}-${r[1]}`;

  const instances: Record<string, any> = {};
  const groups: Record<string, any> = {};
  plan.nodes.forEach((n, i) => {
    const zone = `\${var.zones[${i} % length(var.zones)]}`;
    instances[n.name] = {
      name: ln.instance(n.name),
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
      name: ln.instanceGroup(n.name),
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
      name: ln.firewallRule,
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
      required_version: '>= 1.9.0', // validation conditions that refer to another variable
      required_providers: {
        google: { source: 'hashicorp/google', version: '>= 5.0, < 8.0' },
        random: { source: 'hashicorp/random', version: '>= 3.5' },
      },
    },
    // a module: no provider block (the calling root module configures google; see example/)
    variable: {
      project: { type: 'string', description: 'GCP project id', validation: [{ condition: '${can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))}', error_message: 'project must be a GCP project id (6-30 lower-case letters, digits, -).' }] },
      region: { type: 'string', default: 'europe-west1', description: 'region of the load balancer, subnet and VMs' },
      zones: {
        type: 'list(string)',
        default: ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'],
        description: 'zones of the region; node i goes to zones[i mod n]',
        validation: [{ condition: '${length(var.zones) >= 2 && alltrue([for z in var.zones : startswith(z, "${var.region}-")])}', error_message: 'zones must list at least 2 zones of var.region (a mirror needs its nodes in different zones).' }],
      },
      machine_type: { type: 'string', default: 'e2-small', description: 'machine type of the nodes' },
      image: { type: 'string', default: 'ubuntu-os-cloud/ubuntu-2404-lts-amd64', description: 'boot image of the nodes' },
      vigil_package_path: { type: 'string', default: null, nullable: true, description: `the project's npm pack tarball (default: ${pkgFile} in this module's directory)` },
      function_package_path: { type: 'string', default: null, nullable: true, description: "the function's source zip (default: function.zip in this module's directory)" },
      function_max_instances: { type: 'number', default: 3, description: 'cap on function instances (its events URL is open; events are signed)', validation: [{ condition: '${var.function_max_instances >= 1 && var.function_max_instances <= 100}', error_message: 'function_max_instances must be between 1 and 100.' }] },
      internet_facing: { type: 'bool', default: false, description: 'external passthrough NLB instead of an internal one' },
      client_cidrs: {
        type: 'list(string)',
        default: ['10.20.0.0/16'],
        description: 'who may reach the application port ("0.0.0.0/0" only for a public service)',
        validation: [{ condition: '${alltrue([for c in var.client_cidrs : can(cidrhost(c, 0))])}', error_message: 'client_cidrs must be CIDR blocks, e.g. 203.0.113.0/24.' }],
      },
      allow_iap_ssh: { type: 'bool', default: true, description: 'allow SSH from IAP (35.235.240.0/20)' },
    },
    locals: {
      bootstrap: bootstrap(plan, o),
      // a variable's default cannot refer to path.module: the defaults are resolved here
      package_path: `\${coalesce(var.vigil_package_path, "\${path.module}/${pkgFile}")}`,
      function_package_path: '${coalesce(var.function_package_path, "${path.module}/function.zip")}',
    },
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
        events: { length: 48, special: false },
      },
      google_secret_manager_secret: {
        cluster: { secret_id: ids.cluster, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
        admin: { secret_id: ids.adminToken, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
        events: { secret_id: ids.events, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
        // rotation: put the current events secret here, then a new version in events; both stay valid
        events_previous: { secret_id: ids.eventsPrevious, replication: { auto: {} }, labels: { 'vigil-cluster': c } },
      },
      google_secret_manager_secret_version: {
        cluster: { secret: '${google_secret_manager_secret.cluster.id}', secret_data: '${random_password.cluster.result}' },
        admin: { secret: '${google_secret_manager_secret.admin.id}', secret_data: '${random_password.admin.result}' },
        events: { secret: '${google_secret_manager_secret.events.id}', secret_data: '${random_password.events.result}' },
        events_previous: { secret: '${google_secret_manager_secret.events_previous.id}', secret_data: '${random_password.events.result}' },
      },
      google_secret_manager_secret_iam_member: {
        cluster: { secret_id: '${google_secret_manager_secret.cluster.id}', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:${google_service_account.nodes.email}' },
        admin: { secret_id: '${google_secret_manager_secret.admin.id}', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:${google_service_account.nodes.email}' },
        events: { secret_id: '${google_secret_manager_secret.events.id}', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:${google_service_account.nodes.email}' },
      },
      google_storage_bucket: {
        package: {
          name: `\${var.project}-${c}-package`,
          location: '${var.region}',
          uniform_bucket_level_access: true,
          public_access_prevention: 'enforced',
          force_destroy: true,
        },
        ...(lease ? { lease: { name: `\${var.project}-${c}-lease`, location: '${var.region}', uniform_bucket_level_access: true, public_access_prevention: 'enforced', force_destroy: true } } : {}),
      },
      google_storage_bucket_object: {
        package: { name: `vigil-\${filesha256(local.package_path)}.tgz`, bucket: '${google_storage_bucket.package.name}', source: '${local.package_path}' },
        function: { name: 'function-${filesha256(local.function_package_path)}.zip', bucket: '${google_storage_bucket.package.name}', source: '${local.function_package_path}' },
      },
      google_storage_bucket_iam_member: {
        nodes: { bucket: '${google_storage_bucket.package.name}', role: 'roles/storage.objectViewer', member: 'serviceAccount:${google_service_account.nodes.email}' },
        // the arbiter lease: the nodes read and write (with generation preconditions) its one object
        ...(lease ? { lease: { bucket: '${google_storage_bucket.lease.name}', role: 'roles/storage.objectUser', member: 'serviceAccount:${google_service_account.nodes.email}' } } : {}),
      },
      google_compute_instance: instances,
      google_compute_instance_group: groups,
      google_compute_region_health_check: {
        ready: {
          name: ln.healthCheck,
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
          name: ln.backendService,
          region: '${var.region}',
          protocol: 'TCP',
          load_balancing_scheme: scheme,
          health_checks: ['${google_compute_region_health_check.ready.id}'],
          connection_draining_timeout_sec: 5,
          // a mirror's node1 is the primary backend, the others failover backends: exactly as the adapter has them
          backend: plan.nodes.map((n, i) => ({ group: `\${google_compute_instance_group.${n.name}.id}`, balancing_mode: 'CONNECTION', ...(mode === 'mirror' ? { failover: roles[i].failover } : {}) })),
          ...(g.connectionTrackingPolicy ? { connection_tracking_policy: { connection_persistence_on_unhealthy_backends: g.connectionTrackingPolicy.connectionPersistenceOnUnhealthyBackends } } : {}),
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
      package_object: { value: 'gs://${google_storage_bucket.package.name}/${google_storage_bucket_object.package.name}', description: "the nodes' package" },
      backend_service: { value: '${google_compute_region_backend_service.vip.id}', description: 'the backend service the function reconciles' },
      health_check: { value: '${google_compute_region_health_check.ready.id}', description: "the health check on each node's ready.txt" },
      events_url: { value: '${google_cloudfunctions2_function.vigil.service_config[0].uri}/events', description: 'where the nodes post state changes' },
    },
  };
  for (const [type, byName] of Object.entries(functionResources(plan, ln, mode))) tf.resource[type] = { ...(tf.resource[type] ?? {}), ...byName };
  return { tf, plan };
}

/** A Terraform expression from a JS value: strings of the form "${expr}" are inserted as expressions. */
function hcl(v: unknown): string {
  if (typeof v === 'string') {
    const m = /^\$\{([\s\S]*)\}$/.exec(v);
    return m ? m[1] : JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(hcl).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${hcl(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** the Compute permissions the adapter uses, nothing else (granted on this cluster's resources only) */
export const GCP_FUNCTION_PERMISSIONS = [
  'compute.regionHealthChecks.get',
  'compute.regionHealthChecks.update',
  'compute.firewalls.get',
  'compute.firewalls.update',
  'compute.networks.updatePolicy',
  'compute.instanceGroups.get',
  'compute.instanceGroups.update',
  'compute.instances.use',
  'compute.regionBackendServices.get',
  'compute.regionBackendServices.update',
  'compute.regionOperations.get',
  'compute.globalOperations.get',
  'compute.zoneOperations.get',
];

/** The function's configuration (functions/src/config.ts) with Terraform expressions where values are known at apply time. */
export function gcpFunctionsConfig(plan: ClusterPlan, ln: ReturnType<typeof gcpNames>, mode: ModuleMode) {
  const c = plan.cluster;
  return {
    clusters: {
      [c]: {
        healthPort: plan.healthPort,
        eventSecrets: [{ file: '/etc/vigil-secrets/events/current' }, { file: '/etc/vigil-secrets/events-previous/current' }],
        adminTokens: [{ file: '/etc/vigil-secrets/admin/current' }],
        nodes: plan.nodes.map((n, i) => ({ name: n.name, address: n.addr, instanceId: ln.instance(n.name), zone: `\${var.zones[${i} % length(var.zones)]}` })),
        modules: [
          {
            name: plan.moduleName,
            mode,
            cloud: {
              provider: 'gcp',
              project: '${var.project}',
              region: '${var.region}',
              network: '${google_compute_network.vpc.name}',
              backendService: ln.backendService,
              healthCheck: ln.healthCheck,
              firewallRule: ln.firewallRule,
              targetTags: [ln.targetTag],
              instanceGroups: Object.fromEntries(plan.nodes.map((n) => [n.name, ln.instanceGroup(n.name)])),
              protocol: 'TCP',
              loadBalancingScheme: '${var.internet_facing ? "EXTERNAL" : "INTERNAL"}',
            },
          },
        ],
      },
    },
  };
}

/**
 * The reconcile / status / events function (Cloud Run functions, 2nd gen): one HTTP function (events
 * URL, instance cap, direct VPC egress to reach the nodes), one Pub/Sub-triggered function fed by a
 * Cloud Scheduler job every minute (the periodic reconcile), a service account with a custom role
 * limited by an IAM condition to this cluster's resources, secrets mounted from Secret Manager as
 * volumes (read at use, latest version; a "previous" secret keeps a rotation valid).
 */
function functionResources(plan: ClusterPlan, ln: ReturnType<typeof gcpNames>, mode: ModuleMode): Record<string, any> {
  const c = plan.cluster;
  const ids = GCP_SECRET_IDS(c);
  const secretMount = (name: string, secret: string) => ({ mount_path: `/etc/vigil-secrets/${name}`, project_id: '${var.project}', secret, versions: [{ version: 'latest', path: 'current' }] });
  const config = gcpFunctionsConfig(plan, ln, mode);
  const fn = (entry: string, extra: Record<string, unknown>) => ({
    location: '${var.region}',
    build_config: { runtime: 'nodejs20', entry_point: entry, source: { storage_source: { bucket: '${google_storage_bucket.package.name}', object: '${google_storage_bucket_object.function.name}' } } },
    service_config: {
      max_instance_count: '${var.function_max_instances}',
      available_memory: '256M',
      timeout_seconds: 60,
      service_account_email: '${google_service_account.function.email}',
      environment_variables: { VIGIL_FUNCTIONS_CONFIG: `\${jsonencode(${hcl(config)})}` },
      secret_volumes: [secretMount('events', ids.events), secretMount('events-previous', ids.eventsPrevious), secretMount('admin', ids.adminToken)],
      direct_vpc_network_interface: { network: '${google_compute_network.vpc.id}', subnetwork: '${google_compute_subnetwork.nodes.id}' },
      direct_vpc_egress: 'VPC_EGRESS_PRIVATE_RANGES_ONLY',
      ...extra,
    },
    labels: { 'vigil-cluster': c },
    depends_on: ['google_secret_manager_secret_version.events', 'google_secret_manager_secret_version.events_previous', 'google_secret_manager_secret_iam_member.function_events', 'google_secret_manager_secret_iam_member.function_events_previous', 'google_secret_manager_secret_iam_member.function_admin'],
  });
  const sa = 'serviceAccount:${google_service_account.function.email}';
  const accessor = (secret: string) => ({ secret_id: `\${google_secret_manager_secret.${secret}.id}`, role: 'roles/secretmanager.secretAccessor', member: sa });
  const prefix = `projects/\${var.project}`;
  return {
    google_service_account: { function: { account_id: `${c}-fn`.slice(0, 30), display_name: `Vigil ${c} function` } },
    google_project_iam_custom_role: {
      function: { role_id: `vigil_${c.replaceAll('-', '_')}_lb`, title: `Vigil ${c} load balancer`, description: `What the Vigil function of ${c} does to its load balancer`, permissions: GCP_FUNCTION_PERMISSIONS },
    },
    google_project_iam_member: {
      function: {
        project: '${var.project}',
        role: '${google_project_iam_custom_role.function.id}',
        member: sa,
        condition: {
          title: `vigil-${c}-only`,
          description: `the ${c} cluster's load-balancer resources only`,
          expression: `resource.name.startsWith("${prefix}/regions/\${var.region}/backendServices/${c}") || resource.name.startsWith("${prefix}/regions/\${var.region}/healthChecks/${c}") || resource.name.startsWith("${prefix}/global/firewalls/${c}") || resource.name.startsWith("${prefix}/zones/") || resource.name.startsWith("${prefix}/regions/\${var.region}/operations/") || resource.name.startsWith("${prefix}/global/operations/") || resource.name.startsWith("${prefix}/global/networks/${c}")`,
        },
      },
    },
    google_secret_manager_secret_iam_member: { function_events: accessor('events'), function_events_previous: accessor('events_previous'), function_admin: accessor('admin') },
    google_cloudfunctions2_function: {
      vigil: { name: `${c}-fn`, description: `Vigil ${c}: events, status, reconcile`, ...fn('vigil', { ingress_settings: 'ALLOW_ALL' }) },
      reconcile: {
        name: `${c}-reconcile`,
        description: `Vigil ${c}: periodic reconcile`,
        ...fn('vigilReconcile', { ingress_settings: 'ALLOW_INTERNAL_ONLY' }),
        event_trigger: { trigger_region: '${var.region}', event_type: 'google.cloud.pubsub.topic.v1.messagePublished', pubsub_topic: '${google_pubsub_topic.reconcile.id}', retry_policy: 'RETRY_POLICY_DO_NOT_RETRY', service_account_email: '${google_service_account.function.email}' },
      },
    },
    // the events URL is open (events are HMAC-signed, the function answers 401 to anything else)
    google_cloud_run_service_iam_member: { public: { location: '${var.region}', service: '${google_cloudfunctions2_function.vigil.name}', role: 'roles/run.invoker', member: 'allUsers' } },
    google_pubsub_topic: { reconcile: { name: `${c}-reconcile`, labels: { 'vigil-cluster': c } } },
    google_cloud_scheduler_job: {
      reconcile: { name: `${c}-reconcile`, region: '${var.region}', schedule: '* * * * *', description: `Vigil ${c}: reconcile every minute`, pubsub_target: { topic_name: '${google_pubsub_topic.reconcile.id}', data: '${base64encode("reconcile")}' } },
    },
  };
}
