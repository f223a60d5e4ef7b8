// deploy/kubernetes/: the manifests parsed and checked where it matters: the node's pids, the two
// sockets in separate node directories with only the request one reaching virt-launcher pods,
// the capabilities (the same as the systemd unit's), the config loaded by the daemon's own loader,
// and the probes run for real against a daemon.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile, resolveConfig, type DaemonConfig } from '../../runtime/daemon/config.ts';
import { CAPGATE_BIN, REPO_ROOT } from '../cli/support/run-cli.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { ALLOWED_INSTALL_SCRIPTS } from '../package/support/release.ts';
import { serve } from '../security/support/serve.ts';
import { runChild } from '../support/processes/children.ts';
import { daemonConfig as daemonConfigFor, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { asPolicy, waitFor } from '../daemon/helpers/fixtures.ts';
import { KubeletVolume } from '../support/kubelet-volume.ts';
import { makeKey, sign } from '../support/minisign.ts';
import { readUnit, value } from './support/unit-file.ts';

const DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}
interface HostPathVolume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
}
interface Mount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
interface Probe {
  exec: { command: string[] };
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: Array<{ name: string; value: string }>;
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts: Mount[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}
interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  hostIPC?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsUser?: number; supplementalGroups?: number[]; seccompProfile?: { type: string } };
  containers: Container[];
  volumes: HostPathVolume[];
}

function parseDocuments(file: string): Manifest[] {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const d of docs) expect(d.errors, `${file}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
  return docs.map((d) => d.toJS() as Manifest).filter((m) => m !== null);
}

const manifests = parseDocuments(path.join(DIR, 'capgate.yaml'));
const byKind = (kind: string): Manifest[] => manifests.filter((m) => m.kind === kind);
const daemonSet = byKind('DaemonSet')[0] as Manifest & { spec: { template: { spec: PodSpec } } };
const pod = daemonSet.spec.template.spec;
const container = pod.containers[0]!;
const configMap = byKind('ConfigMap').find((m) => m.metadata.name === 'capgate-config') as Manifest & {
  data: Record<string, string>;
};
const policiesMap = byKind('ConfigMap').find((m) => m.metadata.name === 'capgate-policies') as Manifest & {
  data: Record<string, string>;
};

/** Where a path inside a container is on the node: through the longest hostPath mount above it. */
function onNode(spec: PodSpec, c: Container, p: string): string | null {
  const mounts = c.volumeMounts
    .filter((m) => p === m.mountPath || p.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts[0];
  const host = spec.volumes.find((v) => v.name === mount?.name)?.hostPath?.path;
  return mount === undefined || host === undefined ? null : path.posix.join(host, p.slice(mount.mountPath.length));
}

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);

const testDaemonConfig = daemonConfigFor;

/** The ConfigMap's config as the daemon in the pod resolves it (uid 0), through its own loader. */
function daemonConfig(): DaemonConfig {
  const file = path.join(tempDir('capgate-k8s-config-'), 'config.yaml');
  fs.writeFileSync(file, configMap.data['config.yaml']!, { mode: 0o600 });
  return resolveConfig(loadConfigFile(file), { uid: 0, cwd: '/', cores: 2 });
}

afterAll(removeTempDirs);

describe('the manifests', () => {
  it('are a Namespace, a ServiceAccount without a token, the ConfigMap and the DaemonSet: no RBAC, capgate never calls the API', () => {
    expect(manifests.map((m) => m.kind)).toEqual([
      'Namespace',
      'ServiceAccount',
      'ConfigMap',
      'ConfigMap',
      'DaemonSet',
    ]);
    const sa = byKind('ServiceAccount')[0] as Manifest & { automountServiceAccountToken?: boolean };
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.automountServiceAccountToken).toBe(false);
    const namespace = byKind('Namespace')[0]!.metadata.name;
    for (const m of manifests.filter((x) => x.kind !== 'Namespace'))
      expect(m.metadata.namespace, m.kind).toBe(namespace);
  });

  it("run capgate in the node's pid namespace, as root with only the systemd unit's capabilities, unprivileged, on a read-only root", () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    expect(pod.securityContext?.runAsUser).toBe(0);
    expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(pod.containers).toHaveLength(1);
    const sc = container.securityContext!;
    expect([sc.privileged, sc.allowPrivilegeEscalation, sc.readOnlyRootFilesystem]).toEqual([false, false, true]);
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    const unitCaps = value(
      readUnit(path.join(REPO_ROOT, 'deploy/systemd/capgate.service')),
      'Service',
      'CapabilityBoundingSet',
    ).split(/\s+/);
    expect([...(sc.capabilities?.add ?? [])].sort()).toEqual(unitCaps.map((c) => c.replace(/^CAP_/, '')).sort());
  });

  it("mount the node's cgroup hierarchy read-only, so cgroup paths can be resolved from the container's own cgroup namespace", () => {
    const volume = pod.volumes.find((v) => v.hostPath?.path === '/sys/fs/cgroup');
    expect(volume, 'a hostPath volume of /sys/fs/cgroup').toBeDefined();
    const mount = container.volumeMounts.find((m) => m.name === volume!.name)!;
    expect(mount.readOnly).toBe(true);
    // Not over the runtime's own /sys/fs/cgroup (the namespace's tree), beside it.
    expect(mount.mountPath).not.toBe('/sys/fs/cgroup');
    expect(container.securityContext?.privileged).toBe(false);
  });

  it("hold a config the daemon's own loader accepts, mounted as a plain file where the container's args point", () => {
    const config = daemonConfig();
    const configPath = container.args![container.args!.indexOf('--config') + 1]!;
    expect(container.args!.slice(0, 1)).toEqual(['serve']);
    const mount = container.volumeMounts.find((m) => m.mountPath === configPath)!;
    expect(mount).toMatchObject({ subPath: 'config.yaml', readOnly: true });
    expect(pod.volumes.find((v) => v.name === mount.name)?.configMap?.name).toBe(configMap.metadata.name);
    // A socket's group without CAP_CHOWN: the daemon must belong to it.
    if (config.request.socketGroup !== undefined)
      expect(pod.securityContext?.supplementalGroups).toContain(config.request.socketGroup);
  });

  it('mount a ConfigMap key as a file (subPath): mounted as a directory it is a symlink, which the daemon refuses', () => {
    // The kubelet's layout of a ConfigMap volume: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>.
    const volume = tempDir('capgate-k8s-configmap-');
    fs.mkdirSync(path.join(volume, '..2026_12_04_12_00_00.000000001'), { mode: 0o755 });
    fs.writeFileSync(
      path.join(volume, '..2026_12_04_12_00_00.000000001', 'config.yaml'),
      configMap.data['config.yaml']!,
      { mode: 0o644 },
    );
    fs.symlinkSync('..2026_12_04_12_00_00.000000001', path.join(volume, '..data'));
    fs.symlinkSync('..data/config.yaml', path.join(volume, 'config.yaml'));
    expect(() => loadConfigFile(path.join(volume, 'config.yaml'))).toThrow(/is a symlink/);
  });

  it('keep every directory of the daemon on the node, and the admin socket in a node directory apart from the request socket', () => {
    const config = daemonConfig();
    const paths = {
      runDir: config.runDir,
      stateDir: config.stateDir,
      requestSocketDir: path.dirname(config.requestSocket),
      adminSocketDir: path.dirname(config.adminSocket),
    };
    const host = Object.fromEntries(Object.entries(paths).map(([k, p]) => [k, onNode(pod, container, p)]));
    for (const [k, p] of Object.entries(host)) expect(p, `${k} is on a hostPath volume`).not.toBeNull();
    expect(host).toEqual({
      runDir: '/run/capgate/request',
      stateDir: '/var/lib/capgate',
      requestSocketDir: '/run/capgate/request',
      adminSocketDir: '/run/capgate/admin',
    });
    // Separate volumes, neither inside the other on the node.
    const requestMount = container.volumeMounts.find((m) => within(config.requestSocket, m.mountPath))!;
    const adminMount = container.volumeMounts.find((m) => within(config.adminSocket, m.mountPath))!;
    expect(requestMount.name).not.toBe(adminMount.name);
    expect(
      within(host.adminSocketDir!, host.requestSocketDir!) || within(host.requestSocketDir!, host.adminSocketDir!),
    ).toBe(false);
  });
});

describe('the policy directory (docs/fleet.md)', () => {
  const spawned: DaemonProcess[] = [];
  afterAll(async () => {
    for (const d of spawned) if (d.child.exitCode === null) await d.stop();
  });

  it('is the ConfigMap capgate-policies, mounted read-only as a directory (not subPath, so ..data swaps reach the daemon) where the config points', () => {
    const config = daemonConfig();
    expect(config.policies.directory).toBe('/etc/capgate/policies');
    expect(config.policies.requireSignatures).toBe(true);
    const mount = container.volumeMounts.find((m) => m.mountPath === config.policies.directory)!;
    expect(mount).toMatchObject({ readOnly: true });
    expect(mount.subPath).toBeUndefined();
    expect(pod.volumes.find((v) => v.name === mount.name)?.configMap?.name).toBe(policiesMap.metadata.name);
    expect(policiesMap.metadata.namespace).toBe(configMap.metadata.namespace);
  });

  it('as shipped, is read by a real daemon as the kubelet mounts it; with no trust root configured, a signed bundle is refused and nothing is bound', async () => {
    const dir = tempDir('capgate-k8s-policies-');
    const volume = new KubeletVolume(path.join(dir, 'policies'));
    volume.publish(policiesMap.data);
    const shipped = daemonConfig();
    const d = await spawnDaemon(testDaemonConfig(dir, { policies: { ...shipped.policies, directory: volume.root } }));
    spawned.push(d);
    const h = await d.admin.health();
    expect(h.status).toBe('ok');
    expect(h.detail?.policyDirectory?.error).toBeNull();
    expect(h.detail?.bindings).toEqual([]);
    // A signed bundle, before the operator added the key: fail closed, and say why.
    const key = makeKey(dir, 'k');
    const file = path.join(dir, 'memlock-cap.wasm');
    fs.writeFileSync(file, asPolicy('memlock-cap'));
    volume.publish({
      'memlock-cap.wasm': asPolicy('memlock-cap'),
      'memlock-cap.wasm.minisig': sign(key, file),
      'bindings.yaml': 'bindings:\n  set-memlock:\n    policy: memlock-cap\n',
    });
    const refused = await waitFor(async () => {
      const h = await d.admin.health();
      return h.detail?.policyDirectory?.error ? h : undefined;
    }, 'the refusal of the signed bundle');
    expect(refused.status).toBe('degraded');
    expect(refused.detail?.policyDirectory?.error?.message).toMatch(
      new RegExp(`signed with key ${key.keyId}, which is not among the daemon's trust roots \\(none\\)`),
    );
    expect(refused.detail?.bindings).toEqual([]);
    // A degraded node shows as not ready (docs/fleet.md), and stays alive.
    const probe = (p: Probe, socket: string): number | null => {
      const [node, ...args] = probeArgv(p);
      return spawnSync(node!, [...args, socket], { encoding: 'utf8', timeout: 30_000 }).status;
    };
    expect(probe(container.readinessProbe!, d.requestSocket)).toBe(1);
    expect(probe(container.livenessProbe!, d.adminSocket)).toBe(0);
  });
});

describe("virt-launcher's compute container (deploy/kubernetes/virt-launcher-compute.yaml)", () => {
  const patch = parseDocuments(path.join(DIR, 'virt-launcher-compute.yaml'))[0] as unknown as { spec: PodSpec };
  const compute = patch.spec.containers.find((c) => c.name === 'compute')!;

  it('mounts the request socket directory read-only and nothing that holds the admin socket', () => {
    const config = daemonConfig();
    const requestDir = onNode(pod, container, path.dirname(config.requestSocket))!;
    const adminDir = onNode(pod, container, path.dirname(config.adminSocket))!;
    for (const v of patch.spec.volumes) {
      const hostPath = v.hostPath?.path;
      if (hostPath === undefined) continue;
      expect(within(adminDir, hostPath), `${hostPath} would expose ${adminDir}`).toBe(false);
      expect(within(hostPath, adminDir), `${hostPath} is inside ${adminDir}`).toBe(false);
    }
    const requestMount = compute.volumeMounts.find(
      (m) => patch.spec.volumes.find((v) => v.name === m.name)?.hostPath?.path === requestDir,
    );
    expect(requestMount?.readOnly).toBe(true);
    // The socket inside the pod is where its clients look (the shim's and the CLI's default).
    const inPod = path.posix.join(requestMount!.mountPath, path.basename(config.requestSocket));
    expect(inPod).toBe('/run/capgate/request.sock');
    expect(compute.env?.find((e) => e.name === 'CAPGATE_REQUEST_SOCKET')?.value).toBe(inPod);
    expect(compute.env?.find((e) => e.name === 'LD_PRELOAD')?.value).toMatch(/libcapgate-preload\.so$/);
  });
});

const canMount = spawnSync('unshare', ['-m', 'true']).status === 0;
if (!canMount)
  console.log(
    'unshare -m is not permitted here (no CAP_SYS_ADMIN): the read-only mount of the request directory is not tried',
  );

/**
 * A probe's command as this checkout runs it, without its last argument (the socket): the image's
 * installed bin (the Containerfile's ENTRYPOINT) becomes node and this checkout's bin.
 */
function probeArgv(probe: Probe): string[] {
  const [command, ...args] = probe.exec.command;
  expect(command).toBe('/opt/capgate/bin/capgate');
  expect(args.at(-2)).toBe('--socket');
  return [process.execPath, CAPGATE_BIN, ...args.slice(0, -1)];
}

describe.skipIf(!canMount)('the request directory mounted read-only, as in the virt-launcher pod', () => {
  it('lets a client connect to request.sock, and not remove or replace it', async () => {
    const dir = tempDir('capgate-k8s-ro-');
    fs.chmodSync(dir, 0o755);
    const up = await serve(['--run-dir', path.join(dir, 'run'), '--state-dir', path.join(dir, 'state')]);
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    const pod = tempDir('capgate-k8s-pod-');
    // In a mount namespace of its own: the kubelet's read-only bind mount, then the readiness
    // probe's command (`capgate health`) through it, then what a hostile pod would try.
    const script = [
      'run="$1"; pod="$2"; shift 2',
      'mount --make-rprivate / && mount --bind "$run" "$pod" && mount -o remount,bind,ro "$pod" || exit 90',
      '"$@" "$pod/request.sock" || exit 91',
      '(rm -f "$pod/request.sock") 2>/dev/null && exit 92',
      '(touch "$pod/planted.sock") 2>/dev/null && exit 93',
      'exit 0',
    ].join('\n');
    const r = await runChild('unshare', [
      '-m',
      'sh',
      '-c',
      script,
      'sh',
      path.join(dir, 'run'),
      pod,
      ...probeArgv(container.readinessProbe!),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(up.requestSocket).isSocket()).toBe(true);
  });
});

describe('the probes, run against a real daemon', () => {
  /** The probe's command with its socket argument replaced by a test daemon's. */
  async function runProbe(probe: Probe, socket: string): Promise<number | null> {
    const [command, ...args] = probeArgv(probe);
    return (await runChild(command!, [...args, socket])).code;
  }

  it('readiness asks the request socket, liveness and startup the admin socket, all with `capgate health`; each passes while the daemon serves and fails once it is gone', async () => {
    const config = daemonConfig();
    const probes = {
      readiness: container.readinessProbe!,
      liveness: container.livenessProbe!,
      startup: container.startupProbe!,
    };
    expect(probes.readiness.exec.command.slice(1, 2)).toEqual(['health']);
    expect(probes.readiness.exec.command).not.toContain('--admin');
    for (const p of [probes.liveness, probes.startup])
      expect(p.exec.command.slice(1, 3)).toEqual(['health', '--admin']);
    // Degraded is alive but not ready: a restart mends no degraded problem, so only readiness fails on it.
    for (const p of [probes.liveness, probes.startup]) expect(p.exec.command).toContain('--live');
    expect(probes.readiness.exec.command).not.toContain('--live');
    expect(probes.readiness.exec.command.at(-1)).toBe(config.requestSocket);
    expect(probes.liveness.exec.command.at(-1)).toBe(config.adminSocket);
    expect(probes.startup.exec.command.at(-1)).toBe(config.adminSocket);

    const dir = tempDir('capgate-k8s-probe-');
    const up = await serve(['--run-dir', path.join(dir, 'run'), '--state-dir', path.join(dir, 'state')]);
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    expect(await runProbe(probes.readiness, up.requestSocket)).toBe(0);
    expect(await runProbe(probes.liveness, up.adminSocket)).toBe(0);
    expect(await runProbe(probes.startup, up.adminSocket)).toBe(0);
    expect(await up.served.stop()).toBe(0);
    // 3: no daemon (capgate health's documented exit status).
    expect(await runProbe(probes.readiness, up.requestSocket)).toBe(3);
    expect(await runProbe(probes.liveness, up.adminSocket)).toBe(3);
  });
});

describe('the Containerfile', () => {
  const text = fs.readFileSync(path.join(DIR, 'Containerfile'), 'utf8');

  it('installs the release tarball on a supported Node line, runs only the native modules install scripts, and starts the installed bin', () => {
    const nodeLine = /^ARG NODE_VERSION=(\d+)$/m.exec(text)?.[1];
    const engines = (
      JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
    ).engines.node;
    expect(engines).toContain(`^${nodeLine}.`);
    expect(text.match(/^FROM .*node:\$\{NODE_VERSION\}-bookworm(-slim)?( AS \w+)?$/gm)).toHaveLength(2);
    expect(text).toContain(`--allow-scripts=${ALLOWED_INSTALL_SCRIPTS.join(',')} /tmp/capgate-*.tgz`);
    expect(text).toMatch(/npm install -g --prefix \/opt\/capgate /);
    expect(/^ENTRYPOINT \["(.+)"\]$/m.exec(text)?.[1]).toBe('/opt/capgate/bin/capgate');
    expect(JSON.parse(/^CMD (.+)$/m.exec(text)![1]!)).toEqual(container.args);
  });
});
