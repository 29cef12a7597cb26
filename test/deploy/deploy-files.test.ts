/**
 * Static checks of the deploy files: docker-compose.yml, deploy/k8s, the OpenTelemetry
 * collector, Prometheus and Grafana configuration. Nothing is started; the files are parsed
 * and checked against each other and against README.md's configuration table, so that the
 * documented configuration names and the deploy files cannot drift apart.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const root = resolve(__dirname, '../..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const readYaml = (path: string): any => parse(read(path), { merge: true });

/** Every metric the coordinator exposes on /metrics, with its type. */
const METRICS: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  txn_started_total: 'counter',
  txn_decided_total: 'counter',
  txn_decision_latency_seconds: 'histogram',
  txn_phase_latency_seconds: 'histogram',
  txn_unfinished: 'gauge',
  txn_oldest_unfinished_age_seconds: 'gauge',
  txn_recoveries_total: 'counter',
  txn_takeovers_total: 'counter',
  txn_votes_total: 'counter',
};
/** Series a PromQL expression may select: the metrics, a histogram's series, and Prometheus's own `up`. */
const SERIES = new Set<string>(['up']);
for (const [name, type] of Object.entries(METRICS)) {
  if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) SERIES.add(name + suffix);
  else SERIES.add(name);
}
const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'Inf', 'NaN']);

/** The series names a PromQL expression selects (identifiers that are not functions, labels or keywords). */
function selectedSeries(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/\b([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(match[1])) names.push(match[1]);
  }
  return names;
}

/** Configuration names from README.md: the coordinator's table, and the example services' list. */
function readmeConfiguration(): { coordinator: Set<string>; prefixes: string[]; services: Set<string> } {
  const readme = read('README.md');
  const section = readme.split(/^## Configuration\s*$/m)[1]?.split(/^## /m)[0] ?? '';
  const coordinator = new Set<string>();
  const prefixes: string[] = [];
  for (const match of section.matchAll(/^\|\s*`([A-Z0-9_*]+)`\s*\|/gm)) {
    if (match[1].endsWith('*')) prefixes.push(match[1].slice(0, -1));
    else coordinator.add(match[1]);
  }
  const servicesLine = section.split(/\n\s*\n/).find((paragraph) => paragraph.startsWith('Example services:'))?.split(/^Local scripts:/m)[0] ?? '';
  const services = new Set([...servicesLine.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]));
  return { coordinator, prefixes, services };
}

const config = readmeConfiguration();
const known = (names: Set<string>) => (name: string) => names.has(name) || config.prefixes.some((prefix) => name.startsWith(prefix));
const knownCoordinatorName = known(config.coordinator);
const knownServiceName = known(config.services);

const COORDINATORS = ['coordinator-1', 'coordinator-2', 'coordinator-3'];
const SERVICES = ['inventory', 'payments', 'orders'];

describe('README configuration table', () => {
  it('is found and lists the names the deploy files rely on', () => {
    for (const name of ['DATABASE_URL', 'KAFKA_BROKERS', 'KAFKA_TOPIC_PREFIX', 'PORT', 'COORDINATOR_ID', 'ACCEPTOR_DATABASE_URL']) {
      expect(config.coordinator, name).toContain(name);
    }
    expect(config.prefixes).toContain('OTEL_');
    for (const name of ['DATABASE_URL', 'KAFKA_BROKERS', 'PARTICIPANT_NAME', 'INVENTORY_SEED', 'PAYMENTS_SEED']) expect(config.services, name).toContain(name);
  });
});

// ---------------------------------------------------------------------------------------
// Kubernetes

interface Manifest {
  file: string;
  doc: any;
}

const k8sDir = 'deploy/k8s';
const k8sFiles = readdirSync(join(root, k8sDir))
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .sort();
const manifests: Manifest[] = k8sFiles.flatMap((file) =>
  parseAllDocuments(read(join(k8sDir, file))).flatMap((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
    const doc = document.toJS();
    return doc === null || doc === undefined ? [] : [{ file, doc }];
  }),
);
const byKind = (kind: string): any[] => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const named = (kind: string, name: string): any => {
  const found = byKind(kind).find((d) => d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in ${k8sDir}`);
  return found;
};

/** Names of the environment variables a container gets: env entries and the keys of envFrom ConfigMaps/Secrets. */
function containerEnvNames(container: any): string[] {
  const names = (container.env ?? []).map((e: any) => e.name as string);
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) names.push(...Object.keys(named('ConfigMap', source.configMapRef.name).data ?? {}));
    if (source.secretRef) {
      const secret = named('Secret', source.secretRef.name);
      names.push(...Object.keys({ ...secret.data, ...secret.stringData }));
    }
  }
  return names;
}

/**
 * Names not in the README are allowed only as helpers that Kubernetes substitutes ($(NAME))
 * into the value of a documented variable of the same container; the process never reads them.
 */
function undocumentedEnvNames(container: any, isKnown: (name: string) => boolean): string[] {
  const env: any[] = container.env ?? [];
  const substituted = new Set(env.filter((e) => isKnown(e.name) && typeof e.value === 'string').flatMap((e) => [...(e.value as string).matchAll(/\$\(([A-Za-z0-9_]+)\)/g)].map((m) => m[1])));
  return containerEnvNames(container).filter((name) => !isKnown(name) && !substituted.has(name));
}

function containerPort(container: any, port: string | number): number {
  if (typeof port === 'number') return port;
  const found = (container.ports ?? []).find((p: any) => p.name === port);
  if (!found) throw new Error(`container ${container.name} has no port named ${port}`);
  return found.containerPort;
}

describe('deploy/k8s', () => {
  it('every manifest parses and has apiVersion, kind and metadata.name', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, doc } of manifests) {
      expect(typeof doc.apiVersion, file).toBe('string');
      expect(typeof doc.kind, file).toBe('string');
      expect(typeof doc.metadata?.name, file).toBe('string');
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, `${file} ${doc.kind}/${doc.metadata.name}`).toBe(named('Namespace', 'txn-coordinator').metadata.name);
    }
  });

  it('kustomization.yaml lists exactly the manifest files present', () => {
    const kustomization = readYaml(join(k8sDir, 'kustomization.yaml'));
    expect(kustomization.kind).toBe('Kustomization');
    expect([...kustomization.resources].sort()).toEqual(k8sFiles);
  });

  it('has the expected resources', () => {
    const kinds = manifests.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`);
    for (const expected of ['Namespace/txn-coordinator', 'ConfigMap/coordinator-config', 'Secret/coordinator-db', 'StatefulSet/coordinator', 'Service/coordinator', 'Service/coordinator-headless', 'PodDisruptionBudget/coordinator', ...SERVICES.flatMap((s) => [`Deployment/${s}`, `Secret/${s}-db`])]) {
      expect(kinds).toContain(expected);
    }
  });

  describe('coordinator StatefulSet', () => {
    const sts = named('StatefulSet', 'coordinator');
    const pod = sts.spec.template;
    const container = pod.spec.containers.find((c: any) => c.name === 'coordinator');
    const env = (name: string) => (container.env ?? []).find((e: any) => e.name === name);

    it('runs three replicas with a selector matching its pods', () => {
      expect(sts.spec.replicas).toBe(3);
      for (const [key, value] of Object.entries(sts.spec.selector.matchLabels)) expect(pod.metadata.labels[key]).toBe(value);
    });

    it('probes /health on the container port', () => {
      const port = Number(named('ConfigMap', 'coordinator-config').data.PORT);
      expect(container.ports.map((p: any) => p.containerPort)).toContain(port);
      for (const probe of ['readinessProbe', 'livenessProbe']) {
        expect(container[probe]?.httpGet?.path, probe).toBe('/health');
        expect(containerPort(container, container[probe].httpGet.port), probe).toBe(port);
      }
    });

    it('takes COORDINATOR_ID from the pod name and has a per-replica acceptor database', () => {
      expect(env('COORDINATOR_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
      expect(env('DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe('coordinator-db');
      const acceptor = env('ACCEPTOR_DATABASE_URL');
      expect(acceptor?.value).toMatch(/\$\(POD_INDEX\)/);
      expect(env('POD_INDEX')?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
      // Kubernetes only substitutes variables defined earlier in the list.
      const order = container.env.map((e: any) => e.name);
      for (const helper of [...acceptor.value.matchAll(/\$\(([A-Za-z0-9_]+)\)/g)].map((m: RegExpMatchArray) => m[1])) {
        expect(order.indexOf(helper), helper).toBeGreaterThanOrEqual(0);
        expect(order.indexOf(helper), helper).toBeLessThan(order.indexOf('ACCEPTOR_DATABASE_URL'));
      }
    });

    it('has resources and Prometheus scrape annotations on the pods', () => {
      expect(container.resources?.requests?.cpu).toBeTruthy();
      expect(container.resources?.requests?.memory).toBeTruthy();
      expect(container.resources?.limits?.memory).toBeTruthy();
      const annotations = pod.metadata.annotations;
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(annotations['prometheus.io/path']).toBe('/metrics');
      expect(Number(annotations['prometheus.io/port'])).toBe(container.ports[0].containerPort);
    });

    it('has a headless Service for stable identities and a ClusterIP Service for the API', () => {
      const headless = named('Service', sts.spec.serviceName);
      expect(headless.spec.clusterIP).toBe('None');
      const api = named('Service', 'coordinator');
      expect(api.spec.type ?? 'ClusterIP').toBe('ClusterIP');
      for (const service of [headless, api]) {
        for (const [key, value] of Object.entries(service.spec.selector)) expect(pod.metadata.labels[key]).toBe(value);
        for (const port of service.spec.ports) expect(containerPort(container, port.targetPort ?? port.port)).toBe(container.ports[0].containerPort);
      }
    });

    it('has a PodDisruptionBudget keeping two replicas available', () => {
      const pdb = named('PodDisruptionBudget', 'coordinator');
      expect(pdb.spec.minAvailable).toBe(2);
      for (const [key, value] of Object.entries(pdb.spec.selector.matchLabels)) expect(pod.metadata.labels[key]).toBe(value);
    });

    it('uses only configuration names documented in README.md', () => {
      expect(undocumentedEnvNames(container, knownCoordinatorName)).toEqual([]);
    });
  });

  describe.each(SERVICES)('%s Deployment', (service) => {
    const deployment = named('Deployment', service);
    const container = deployment.spec.template.spec.containers[0];
    const env = (name: string) => (container.env ?? []).find((e: any) => e.name === name);

    it('runs the example service with its own database Secret', () => {
      expect(container.command.join(' ')).toContain(`dist/examples/${service}/main.js`);
      expect(env('PARTICIPANT_NAME')?.value).toBe(service);
      expect(env('OTEL_SERVICE_NAME')?.value).toBe(service);
      const secretRef = env('DATABASE_URL')?.valueFrom?.secretKeyRef;
      expect(secretRef?.name).toBe(`${service}-db`);
      const secret = named('Secret', secretRef.name);
      expect({ ...secret.data, ...secret.stringData }).toHaveProperty(secretRef.key);
      for (const [key, value] of Object.entries(deployment.spec.selector.matchLabels)) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
    });

    it('uses only configuration names documented in README.md', () => {
      expect(undocumentedEnvNames(container, knownServiceName)).toEqual([]);
    });
  });

  it('every referenced ConfigMap and Secret key exists', () => {
    for (const workload of [...byKind('StatefulSet'), ...byKind('Deployment')]) {
      for (const container of workload.spec.template.spec.containers) {
        for (const e of container.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
          if (!ref) continue;
          const source = named(e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap', ref.name);
          expect({ ...source.data, ...source.stringData }, `${workload.metadata.name} ${e.name}`).toHaveProperty(ref.key);
        }
        expect(() => containerEnvNames(container)).not.toThrow();
      }
    }
  });
});

// ---------------------------------------------------------------------------------------
// docker-compose

const compose = readYaml('docker-compose.yml');
const services: Record<string, any> = compose.services;

function composeEnv(service: any): Record<string, string> {
  const environment = service.environment ?? {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(environment.map((line: string) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)]));
}

const createdDatabases = new Set([...read('deploy/compose/create-databases.sql').matchAll(/CREATE DATABASE\s+"?([a-z0-9_]+)"?/gi)].map((m) => m[1]));
const databaseOf = (url: string): string => new URL(url).pathname.slice(1);

describe('docker-compose.yml', () => {
  it('has every service', () => {
    for (const name of ['postgres', 'kafka', ...COORDINATORS, ...SERVICES, 'otel-collector', 'jaeger', 'prometheus', 'grafana']) {
      expect(Object.keys(services)).toContain(name);
    }
  });

  it('runs Kafka from apache/kafka in KRaft mode', () => {
    const kafka = services.kafka;
    expect(kafka.image).toMatch(/^apache\/kafka:/);
    const env = composeEnv(kafka);
    expect(env.KAFKA_PROCESS_ROLES.split(',').sort()).toEqual(['broker', 'controller']);
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).toBeTruthy();
    expect(env.KAFKA_CONTROLLER_LISTENER_NAMES).toBeTruthy();
    expect(Object.keys(env).some((k) => k.includes('ZOOKEEPER'))).toBe(false);
    expect(services.zookeeper).toBeUndefined();
  });

  it('runs three coordinator replicas with their own ids, one shared log and their own acceptor databases', () => {
    const envs = COORDINATORS.map((name) => composeEnv(services[name]));
    expect(envs.map((e) => e.COORDINATOR_ID)).toEqual(COORDINATORS);
    expect(new Set(envs.map((e) => e.DATABASE_URL)).size).toBe(1);
    expect(envs.map((e) => databaseOf(e.ACCEPTOR_DATABASE_URL))).toEqual(['coordinator_acceptor_1', 'coordinator_acceptor_2', 'coordinator_acceptor_3']);
    COORDINATORS.forEach((name, i) => {
      const service = services[name];
      const port = envs[i].PORT ?? '3000';
      expect(service.ports.map(String), name).toEqual([`${3001 + i}:${port}`]);
      expect(service.healthcheck?.test?.join(' '), name).toContain(`127.0.0.1:${port}/health`);
      expect(service.build ?? service.image, name).toBeTruthy();
      expect(service.depends_on?.postgres?.condition, name).toBe('service_healthy');
      expect(service.depends_on?.kafka?.condition, name).toBe('service_healthy');
    });
  });

  it('creates every database a service uses', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(composeEnv(service))) {
        if (/DATABASE_URL$/.test(key)) expect(createdDatabases, `${name} ${key}`).toContain(databaseOf(value));
      }
    }
  });

  it('sends every app service\u2019s traces to the collector', () => {
    for (const name of [...COORDINATORS, ...SERVICES]) {
      const env = composeEnv(services[name]);
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT, name).toBe('http://otel-collector:4318');
      expect(env.OTEL_SERVICE_NAME, name).toBeTruthy();
    }
    expect(services['otel-collector'].image).toMatch(/^otel\/opentelemetry-collector-contrib:/);
    expect(services.jaeger.image).toMatch(/^jaegertracing\/all-in-one:/);
    expect(services.jaeger.ports.map(String)).toContain('16686:16686');
  });

  it('uses only configuration names documented in README.md', () => {
    for (const name of COORDINATORS) {
      expect(Object.keys(composeEnv(services[name])).filter((k) => !knownCoordinatorName(k)), name).toEqual([]);
    }
    for (const name of SERVICES) {
      expect(Object.keys(composeEnv(services[name])).filter((k) => !knownServiceName(k)), name).toEqual([]);
    }
  });

  it('mounts files that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = String(volume).split(':')[0];
        if (source.startsWith('./')) expect(existsSync(join(root, source)), `${name}: ${source}`).toBe(true);
      }
      if (service.build) expect(existsSync(join(root, service.build.context, service.build.dockerfile ?? 'Dockerfile')), name).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Collector, Prometheus, Grafana

/** The host file that docker-compose mounts at a container path of a service. */
function mountedFile(service: string, containerPath: string): string {
  const volume = (services[service].volumes ?? []).map(String).find((v: string) => v.split(':')[1] === containerPath);
  if (!volume) throw new Error(`${service} mounts nothing at ${containerPath}`);
  return volume.split(':')[0];
}

describe('OpenTelemetry collector config', () => {
  const collector = readYaml('deploy/otel/collector.yaml');

  it('is the file docker-compose mounts', () => {
    const configFlag = (services['otel-collector'].command ?? []).find((c: string) => c.startsWith('--config='));
    expect(mountedFile('otel-collector', configFlag.slice('--config='.length))).toBe('./deploy/otel/collector.yaml');
  });

  it('receives OTLP over http on the port the services send to, and has a traces pipeline', () => {
    expect(collector.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
    const traces = collector.service.pipelines.traces;
    expect(traces.receivers).toContain('otlp');
    expect(traces.exporters.length).toBeGreaterThan(0);
    for (const exporter of traces.exporters) expect(collector.exporters, exporter).toHaveProperty(exporter);
    for (const processor of traces.processors ?? []) expect(collector.processors, processor).toHaveProperty(processor);
    for (const extension of collector.service.extensions ?? []) expect(collector.extensions, extension).toHaveProperty(extension);
  });

  it('exports traces to Jaeger over OTLP', () => {
    const exporters = collector.service.pipelines.traces.exporters.map((e: string) => collector.exporters[e]);
    expect(exporters.some((e: any) => /^(?:https?:\/\/)?jaeger:4317$/.test(e.endpoint))).toBe(true);
  });
});

describe('Prometheus config', () => {
  const prometheus = readYaml('deploy/prometheus/prometheus.yml');

  it('is the file docker-compose mounts', () => {
    expect(mountedFile('prometheus', '/etc/prometheus/prometheus.yml')).toBe('./deploy/prometheus/prometheus.yml');
  });

  it('scrapes /metrics of all three coordinators', () => {
    const targets: string[] = prometheus.scrape_configs
      .filter((job: any) => (job.metrics_path ?? '/metrics') === '/metrics')
      .flatMap((job: any) => (job.static_configs ?? []).flatMap((c: any) => c.targets));
    for (const name of COORDINATORS) expect(targets).toContain(`${name}:${composeEnv(services[name]).PORT ?? '3000'}`);
  });

  it('alert rules parse and select only the coordinator\u2019s metrics', () => {
    for (const file of prometheus.rule_files ?? []) {
      const rules = readYaml(mountedFile('prometheus', file));
      const all = rules.groups.flatMap((g: any) => g.rules);
      expect(all.length).toBeGreaterThan(0);
      for (const rule of all) {
        const series = selectedSeries(rule.expr);
        expect(series.length, rule.alert).toBeGreaterThan(0);
        for (const name of series) expect(SERIES, `${rule.alert}: ${name}`).toContain(name);
      }
    }
  });
});

describe('Grafana', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/coordinator.json'));
  const panels: any[] = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]).filter((p: any) => p.type !== 'row');
  const exprs: string[] = panels.flatMap((p) => (p.targets ?? []).map((t: any) => t.expr));
  const datasources = readYaml('deploy/grafana/provisioning/datasources/datasources.yml').datasources;
  const providers = readYaml('deploy/grafana/provisioning/dashboards/dashboards.yml').providers;

  it('provisioning and dashboards are mounted where Grafana reads them', () => {
    expect(mountedFile('grafana', '/etc/grafana/provisioning')).toBe('./deploy/grafana/provisioning');
    expect(providers.map((p: any) => mountedFile('grafana', p.options.path))).toContain('./deploy/grafana/dashboards');
    const prometheusSource = datasources.find((d: any) => d.type === 'prometheus');
    expect(prometheusSource.url).toBe('http://prometheus:9090');
  });

  it('every panel queries a provisioned datasource with expressions over known metrics only', () => {
    const uids = new Set(datasources.map((d: any) => d.uid));
    expect(panels.length).toBeGreaterThan(0);
    for (const panel of panels) {
      expect(uids, panel.title).toContain(panel.datasource.uid);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        const series = selectedSeries(target.expr);
        expect(series.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const name of series) expect(SERIES, `${panel.title}: ${name}`).toContain(name);
      }
    }
  });

  it('has throughput, latency percentiles, unfinished, takeovers, recoveries and votes', () => {
    const all = exprs.join('\n');
    expect(all).toMatch(/rate\(txn_decided_total\[/);
    for (const q of ['0.5', '0.95', '0.99']) expect(all).toContain(`histogram_quantile(${q}, sum by (le, protocol) (rate(txn_decision_latency_seconds_bucket[`);
    for (const metric of ['txn_unfinished', 'txn_oldest_unfinished_age_seconds', 'txn_takeovers_total', 'txn_recoveries_total', 'txn_votes_total', 'txn_phase_latency_seconds_bucket']) {
      expect(selectedSeries(all), metric).toContain(metric);
    }
  });

  it('the PromQL check itself tells metrics from functions, labels and keywords', () => {
    expect(selectedSeries('histogram_quantile(0.99, sum by (le, protocol) (rate(txn_decision_latency_seconds_bucket{decision=~"(?i)abort"}[$__rate_interval]))) > 1e-9')).toEqual(['txn_decision_latency_seconds_bucket']);
    expect(selectedSeries('sum(rate(foo_total[5m])) / clamp_min(up, 1) and bar')).toEqual(['foo_total', 'up', 'bar']);
  });
});
