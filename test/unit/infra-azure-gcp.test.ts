import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';
import { parse } from 'yaml';
import { GCP_PROBE_RANGES, probeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { modulePorts, validateConfig } from '../../node-service/src/config/index.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { synthAzure } from '../../infra/azure/synth.ts';
import { extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { cidrContains } from '../../infra/common/ip.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';
import { synthGcp } from '../../infra/gcp/synth.ts';

const out = mkdtempSync(join(tmpdir(), 'vigil-infra-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const WORLD = new Set(['*', '0.0.0.0/0', 'Internet', 'Any', '::/0']);

function portIn(spec: string, port: number): boolean {
  if (spec === '*') return true;
  const [a, b] = spec.split('-').map(Number);
  return port >= a && port <= (b ?? a);
}

function clusterPorts(mode: ModuleMode, id = 1): { port: number; proto: 'Tcp' | 'Udp' }[] {
  const p = modulePorts(id);
  return [
    { port: p.heartbeat, proto: 'Udp' },
    ...(mode === 'mirror' ? [0, 1, 2, 3].map((i) => ({ port: p.replication + i, proto: 'Tcp' as const })) : [0, 1, 2].map((i) => ({ port: p.farm + i, proto: 'Udp' as const }))),
    { port: 9010, proto: 'Tcp' },
  ];
}

describe('Azure ARM templates', () => {
  const files = synthAzure(join(out, 'azure'));

  for (const mode of ['mirror', 'farm'] as const) {
    describe(mode, () => {
      // GIVEN the emitted file, parsed back
      const template = JSON.parse(readFileSync(join(out, 'azure', `vigil-${mode}.json`), 'utf8'));
      const res = (type: string) => template.resources.filter((r: any) => r.type === type);
      const s = probeSettings({ module: mode, mode, healthPort: 9010 });

      it('is an ARM deployment template with the files written', () => {
        expect(template.$schema).toMatch(/deploymentTemplate\.json#$/);
        expect(files.some((f) => f.endsWith(`vigil-${mode}.json`))).toBe(true);
        for (const r of template.resources) expect(r.apiVersion, r.type).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      });

      it('probe equals the shared probe settings', () => {
        const lb = res('Microsoft.Network/loadBalancers')[0];
        expect(lb.sku.name).toBe('Standard');
        const probe = lb.properties.probes[0].properties;
        expect(probe).toEqual({
          protocol: s.azure.protocol,
          port: s.azure.port,
          requestPath: s.azure.requestPath,
          intervalInSeconds: s.azure.intervalInSeconds,
          probeThreshold: s.azure.probeThreshold,
          noHealthyBackendsBehavior: s.azure.noHealthyBackendsBehavior,
        });
        const rule = lb.properties.loadBalancingRules[0].properties;
        expect(rule).toMatchObject({ protocol: 'Tcp', frontendPort: 80, backendPort: 80, enableFloatingIP: false });
        expect(rule.probe.id).toContain(lb.properties.probes[0].name);
      });

      it('NSG: probe source 168.63.129.16 on the health port, no cluster port open to the world', () => {
        const rules = res('Microsoft.Network/networkSecurityGroups')[0].properties.securityRules.map((r: any) => r.properties);
        const allows = rules.filter((r: any) => r.access === 'Allow');
        expect(allows.some((r: any) => r.sourceAddressPrefix === s.azure.sourceAddress && portIn(r.destinationPortRange, 9010))).toBe(true);
        for (const { port, proto } of clusterPorts(mode)) {
          const matching = allows.filter((r: any) => (r.protocol === proto || r.protocol === '*') && portIn(r.destinationPortRange, port));
          expect(matching.length, `${proto}/${port}`).toBeGreaterThan(0);
          for (const r of matching) {
            const sources: string[] = r.sourceAddressPrefixes ?? [r.sourceAddressPrefix];
            for (const src of sources) {
              expect(WORLD.has(src), `${proto}/${port} from ${src}`).toBe(false);
              expect(src === s.azure.sourceAddress || /^\d+\.\d+\.\d+\.\d+$/.test(src), `${proto}/${port} from ${src}`).toBe(true);
            }
          }
          // and the default AllowVnetInBound is overridden for it
          expect(rules.some((r: any) => r.access === 'Deny' && r.protocol === proto && portIn(r.destinationPortRange, port) && r.priority < 65000)).toBe(true);
        }
        // the only rule whose source a parameter decides is the application port's
        const param = allows.filter((r: any) => String(r.sourceAddressPrefix).startsWith('[parameters('));
        expect(param.map((r: any) => r.destinationPortRange)).toEqual(['80']);
        expect(template.parameters.clientAddressPrefix.defaultValue).toBe('VirtualNetwork');
      });

      it('VMs in different zones, static IPs in the subnet, cloud-init with a config the daemon accepts', () => {
        const vms = res('Microsoft.Compute/virtualMachines');
        expect(vms).toHaveLength(2);
        expect(new Set(vms.map((v: any) => v.zones[0])).size).toBe(2);
        const nics = res('Microsoft.Network/networkInterfaces');
        const ips = nics.map((n: any) => n.properties.ipConfigurations[0].properties.privateIPAddress);
        for (const ip of ips) expect(cidrContains('10.10.1.0/24', ip)).toBe(true);
        for (const v of vms) expect(v.properties.osProfile.customData).toBe("[base64(variables('bootstrap'))]");
        const script: string = template.variables.bootstrapTemplate;
        expect(Buffer.byteLength(script) * 4 / 3).toBeLessThan(65535); // customData limit
        const config = validateConfig(parse(extractClusterYaml(script).replace('__VIGIL_EVENTS_URL__', 'https://vigil-fn.azurewebsites.net/api/events')), '/etc/vigil/cluster.yaml', { skipFileChecks: true });
        expect(config.nodes.map((n) => n.addrs[0])).toEqual(ips);
        expect(config.modules[0]).toMatchObject({ name: mode, mode });
        expect(script).toContain('systemctl enable --now vigil.service');
        expect(script).toContain('npm install -g');
        // secrets come from Key Vault through the managed identity, never from the template
        expect(script).not.toMatch(/clusterSecret|adminToken'/);
        expect(template.parameters.clusterSecret.type).toBe('securestring');
      });
    });
  }

  it('impossible input throws', () => {
    expect(() => azureClusterTemplate('mirror', { nodeCount: 3 })).toThrow(/exactly 2 nodes/);
    expect(() => azureClusterTemplate('farm', { subnetCidr: '10.99.1.0/24' })).toThrow(/not inside vnetCidr/);
    expect(() => azureClusterTemplate('farm', { listenerPort: 9010 })).toThrow(/must differ/);
  });
});

describe('GCP Terraform JSON', () => {
  const files = synthGcp(join(out, 'gcp'));

  for (const mode of ['mirror', 'farm'] as const) {
    describe(mode, () => {
      const tf = JSON.parse(readFileSync(join(out, 'gcp', mode, 'main.tf.json'), 'utf8'));
      const r = tf.resource;
      const s = probeSettings({ module: mode, mode, healthPort: 9010 });

      it('uses the google provider, ships the package next to it', () => {
        expect(tf.terraform.required_providers.google.source).toBe('hashicorp/google');
        expect(files).toContain(join(out, 'gcp', mode, 'vigil.tgz'));
        // a module: the root module configures the provider; a variable's default cannot use path.module
        expect(tf.provider).toBeUndefined();
        expect(JSON.stringify(tf.variable)).not.toContain('path.module');
        expect(tf.locals.package_path).toBe('${coalesce(var.vigil_package_path, "${path.module}/vigil.tgz")}');
      });

      it('health check equals the shared probe settings; failover policy for mirror', () => {
        const hc = r.google_compute_region_health_check.ready;
        expect(hc).toMatchObject({
          check_interval_sec: s.gcp.checkIntervalSec,
          timeout_sec: s.gcp.timeoutSec,
          healthy_threshold: s.gcp.healthyThreshold,
          unhealthy_threshold: s.gcp.unhealthyThreshold,
          http_health_check: { port: s.gcp.port, request_path: s.gcp.requestPath },
        });
        const bs = r.google_compute_region_backend_service.vip;
        expect(bs.health_checks).toEqual(['${google_compute_region_health_check.ready.id}']);
        expect(bs.backend).toHaveLength(2);
        if (s.gcp.failoverPolicy) {
          expect(bs.failover_policy).toEqual({
            drop_traffic_if_unhealthy: s.gcp.failoverPolicy.dropTrafficIfUnhealthy,
            disable_connection_drain_on_failover: s.gcp.failoverPolicy.disableConnectionDrainOnFailover,
            failover_ratio: s.gcp.failoverPolicy.failoverRatio,
          });
        } else {
          expect(bs.failover_policy).toBeUndefined();
        }
        expect(r.google_compute_forwarding_rule.vip.ports).toEqual(['80']);
      });

      it("firewall: probe ranges on the health port only, cluster ports between the nodes' tag only", () => {
        const fw = Object.values<any>(r.google_compute_firewall);
        const health = fw.find((f) => f.allow.some((a: any) => a.ports.includes('9010')) && f.source_ranges);
        expect(health.source_ranges).toEqual([...GCP_PROBE_RANGES]);
        expect(health.allow).toEqual([{ protocol: 'tcp', ports: ['9010'] }]);
        for (const { port, proto } of clusterPorts(mode)) {
          const open = fw.filter((f) => f.allow.some((a: any) => a.protocol === proto.toLowerCase() && a.ports.some((p: string) => portIn(p, port))));
          expect(open.length, `${proto}/${port}`).toBeGreaterThan(0);
          for (const f of open) {
            const sources: unknown = f.source_ranges ?? [];
            expect(Array.isArray(sources) ? sources.some((x: string) => WORLD.has(x)) : true, `${f.name}`).toBe(false);
            if (!f.source_tags) expect(sources).toEqual([...GCP_PROBE_RANGES]);
          }
        }
        expect(tf.variable.client_cidrs.default).not.toContain('0.0.0.0/0');
      });

      it("VMs in different zones, no external IP, startup script with a config the daemon accepts", () => {
        const vms = Object.values<any>(r.google_compute_instance);
        expect(vms).toHaveLength(2);
        expect(new Set(vms.map((v) => v.zone)).size).toBe(2);
        for (const v of vms) expect(v.network_interface.access_config).toBeUndefined();
        const script: string = tf.locals.bootstrap;
        // Terraform escapes: shell ${...} are written $${...}; the config holds no interpolation
        const config = validateConfig(parse(extractClusterYaml(script).replace('$${google_cloudfunctions2_function.vigil.service_config[0].uri}/events', 'https://vigil-fn.a.run.app/events').replace('${google_cloudfunctions2_function.vigil.service_config[0].uri}/events', 'https://vigil-fn.a.run.app/events')), '/etc/vigil/cluster.yaml', { skipFileChecks: true });
        expect(config.nodes.map((n) => n.addrs[0])).toEqual(vms.map((v) => v.network_interface.network_ip));
        // probes arrive addressed to the forwarding rule's IP
        expect(config.api.listen).toEqual(['0.0.0.0']);
        expect(config.modules[0]).toMatchObject({ name: mode, mode });
        expect(script).toContain('systemctl enable --now vigil.service');
        expect(script.match(/(?<!\$)\$\{[^}]*\}/g)?.every((m) => /^\$\{(google_|urlencode|var\.)/.test(m))).toBe(true);
      });
    });
  }

  it('a farm of 3 spreads over 3 zones', () => {
    const { tf } = gcpClusterTerraform('farm', { nodeCount: 3 });
    const zones = Object.values<any>(tf.resource.google_compute_instance).map((v) => v.zone);
    expect(zones).toEqual(['${var.zones[0 % length(var.zones)]}', '${var.zones[1 % length(var.zones)]}', '${var.zones[2 % length(var.zones)]}']);
  });
});
