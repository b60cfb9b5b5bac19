// Podman on each lab host with weft's CNI plugin as `flannel`: weftd writes
// the conflist (--cni-conf, --cni-plugin flannel) into the host's own CNI
// config directory; `weft install-cni` puts the plugin into a lab-local
// plugin directory searched before Debian's (/usr/lib/cni, for bridge and
// host-local). Podman 4.3 here drives CNI itself (no netavark). Per host:
// containers.conf and storage.conf under the host's lab directory (storage,
// state, locks, events, host-local's dataDir), rlimits that runc can set, a
// relative cgroup parent, and the host's own mount namespace for what podman
// writes under /run (its netns files) and /var/lib/cni (the CNI cache).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WEFT } from '../agent.js';
import { installWeftPlugin } from '../cni.js';
import type { Lab, LabHost } from '../lab.js';
import { exec, type ExecOptions, type ExecResult } from '../netns.js';
import { buildImageTar, IMAGE, IMPORT_CHANGES } from './image.js';
import { startMountNs } from './mount-ns.js';
import { ContainerRuntime, LAB_DNS, type RuntimeKind } from './runtime.js';

/** The CNI network weftd's conflist defines (its "name"). */
export const NETWORK_NAME = 'weft';

/** This process's hard limit for a resource in /proc/self/limits (runc cannot raise a container above it). */
function hardLimit(name: string, fallback: number): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard && /^\d+$/.test(hard) ? Math.min(Number(hard), fallback) : fallback;
}

const toml = (s: string) => JSON.stringify(s);

export class PodmanRuntime extends ContainerRuntime {
  readonly kind: RuntimeKind = 'podman';
  private pluginPath?: readonly string[];
  private readonly env = new Map<LabHost, NodeJS.ProcessEnv>();

  constructor(lab: Lab) {
    super(lab);
  }

  /** Plugin directories: the lab's own (weft's plugin as flannel and weft), then Debian's. */
  async installPlugin(): Promise<readonly string[]> {
    this.pluginPath ??= await installWeftPlugin(WEFT, join(this.lab.dir, 'cni-bin'));
    return this.pluginPath;
  }

  override async prepare(): Promise<void> {
    await this.installPlugin();
  }

  /** Where weftd writes the host's conflist; podman's network_config_dir. */
  confDir(host: LabHost): string {
    return join(host.dir, 'cni-conf');
  }

  /** host-local's state directory on the host (--cni-ipam-data-dir): <dir>/<network>/<ip> per reserved address. */
  ipamDir(host: LabHost): string {
    return join(host.dir, 'ipam');
  }

  weftdArgs(host: LabHost): string[] {
    return [
      '--bridge', 'none', '--ip-masq',
      '--cni-conf', join(this.confDir(host), '10-weft.conflist'), '--cni-plugin', 'flannel', '--cni-ipam-data-dir', this.ipamDir(host),
    ];
  }

  async startHost(host: LabHost): Promise<void> {
    const plugins = await this.installPlugin();
    const dir = join(host.dir, 'podman');
    for (const d of ['root', 'run', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
    const conf = join(dir, 'containers.conf');
    writeFileSync(conf, [
      '[containers]',
      `default_ulimits = [${toml(`nofile=${hardLimit('Max open files', 1048576)}:${hardLimit('Max open files', 1048576)}`)}, ${toml(`nproc=${hardLimit('Max processes', 32768)}:${hardLimit('Max processes', 32768)}`)}]`,
      `dns_servers = [${toml(LAB_DNS)}]`,
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${toml(join(dir, 'events.log'))}`,
      `tmp_dir = ${toml(join(dir, 'tmp'))}`,
      `static_dir = ${toml(join(dir, 'root', 'libpod'))}`,
      `volume_path = ${toml(join(dir, 'root', 'volumes'))}`,
      'lock_type = "file"',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = [${plugins.map(toml).join(', ')}]`,
      `network_config_dir = ${toml(this.confDir(host))}`,
      `default_network = ${toml(NETWORK_NAME)}`,
      '',
    ].join('\n'));
    const storage = join(dir, 'storage.conf');
    writeFileSync(storage, `[storage]\ndriver = "overlay"\nrunroot = ${toml(join(dir, 'run'))}\ngraphroot = ${toml(join(dir, 'root'))}\n`);
    this.env.set(host, { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage });
    this.mountNs.set(host, await startMountNs(this.lab, host));
    const tar = await buildImageTar(join(this.lab.dir, 'image'));
    await this.cliOk(host, ['import', ...IMPORT_CHANGES, tar, IMAGE], { timeoutMs: 60_000 });
  }

  cli(host: LabHost, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const mns = this.mountNs.get(host);
    if (!mns) throw new Error(`podman is not set up on ${host.name}`);
    const [cmd, ...argv] = mns.argv('podman', args);
    return exec(cmd!, argv, { timeoutMs: 30_000, env: this.env.get(host), ...opts });
  }

  cliHint(host: LabHost): string {
    const e = this.env.get(host) ?? {};
    return `nsenter --target=${this.mountNsPid(host) ?? '?'} --mount --net -- env CONTAINERS_CONF=${e.CONTAINERS_CONF} CONTAINERS_STORAGE_CONF=${e.CONTAINERS_STORAGE_CONF} podman`;
  }

  protected async stopHost(host: LabHost): Promise<void> {
    // No daemon: with the containers gone, only the mount namespace's holder is left.
    const mns = this.mountNs.get(host);
    if (mns) await this.lab.stop(mns.holder);
  }
}
