// A real dockerd on each lab host, set up the way the README tells an
// operator to: weftd with --bridge none (Docker owns docker0) and --ip-masq,
// `weft docker-opts` turning subnet.env into --bip/--mtu/--ip-masq=false, and
// dockerd started with those. Per host: its own data-root, exec-root,
// pidfile, socket, config file and key under the host's lab directory, a
// relative --cgroup-parent, overlay2, and the host's own mount namespace
// (./mount-ns.ts) for what dockerd and containerd write under /run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostSubnetFile, waitFor, WEFT } from '../agent.js';
import type { Lab, LabHost, TrackedProcess } from '../lab.js';
import { exec, execIn, execOk, type ExecOptions, type ExecResult } from '../netns.js';
import { buildImageTar, IMAGE, IMPORT_CHANGES } from './image.js';
import { startMountNs } from './mount-ns.js';
import { ContainerRuntime, LAB_DNS, type RuntimeKind } from './runtime.js';

/** docker.io's client (a newer one elsewhere on PATH may not speak to dockerd 20.10's API). */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/** DOCKER_OPTS from the file `weft docker-opts` wrote, as arguments. */
export function dockerOptsArgs(envFile: string): string[] {
  const line = readFileSync(envFile, 'utf8').split('\n').find((l) => l.startsWith('DOCKER_OPTS='));
  if (!line) throw new Error(`${envFile} has no DOCKER_OPTS line`);
  return line.slice('DOCKER_OPTS='.length).replace(/^"|"$/g, '').split(/\s+/).filter(Boolean);
}

interface Daemon { proc: TrackedProcess; sock: string; args: string[] }

export class DockerRuntime extends ContainerRuntime {
  readonly kind: RuntimeKind = 'docker';
  private readonly daemons = new Map<LabHost, Daemon>();

  constructor(lab: Lab) {
    super(lab);
  }

  weftdArgs(): string[] {
    return ['--bridge', 'none', '--ip-masq'];
  }

  /** The dockerd arguments a host ran with (for tests and the demo). */
  daemonArgs(host: LabHost): readonly string[] {
    return this.daemons.get(host)?.args ?? [];
  }

  async startHost(host: LabHost): Promise<void> {
    const dir = join(host.dir, 'docker');
    mkdirSync(dir, { recursive: true });
    // As deploy/docker.service.d/weft.conf does: ExecStartPre=weft docker-opts, then the variable on dockerd's line.
    const optsFile = join(dir, 'docker_opts.env');
    await execOk(process.execPath, [WEFT, 'docker-opts', '--subnet-file', hostSubnetFile(host), '--output', optsFile]);
    const opts = dockerOptsArgs(optsFile);
    // Docker sets the FORWARD policy to DROP when it turns on ip_forward itself; weftd turned it on first, so do what Docker does on most hosts.
    const pol = await execIn(host.ns, 'iptables', ['-w', '5', '-P', 'FORWARD', 'DROP']);
    if (pol.code !== 0) throw new Error(`iptables -P FORWARD DROP on ${host.name}: ${pol.stderr.trim()}`);
    const mns = await startMountNs(this.lab, host);
    this.mountNs.set(host, mns);
    const config = join(dir, 'daemon.json');
    // /etc/docker/key.json otherwise: the machine's /etc is shared by every lab host.
    writeFileSync(config, JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }) + '\n');
    const sock = join(dir, 'docker.sock');
    const args = [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${sock}`,
      '--config-file', config,
      '--storage-driver', 'overlay2',
      '--cgroup-parent', this.cgroupParent(host),
      '--dns', LAB_DNS,
      '--log-level', 'warn',
      ...opts,
    ];
    const proc = this.lab.spawnIn(host.ns, 'dockerd', args, { nsenter: { target: mns.pid }, logName: `dockerd-${host.name}` });
    this.daemons.set(host, { proc, sock, args });
    await waitFor(`dockerd on ${host.name}`, 30_000, async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`dockerd on ${host.name} exited (${proc.exitCode ?? proc.signalCode}):\n${this.lab.readLog(proc).slice(-3000)}`);
      return (await this.cli(host, ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 })).code === 0;
    });
    const tar = await buildImageTar(join(this.lab.dir, 'image'));
    await this.cliOk(host, ['import', ...IMPORT_CHANGES, tar, IMAGE], { timeoutMs: 60_000 });
  }

  cli(host: LabHost, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const d = this.daemons.get(host);
    if (!d) throw new Error(`dockerd is not running on ${host.name}`);
    return exec(DOCKER_CLI, ['-H', `unix://${d.sock}`, ...args], { timeoutMs: 30_000, ...opts });
  }

  cliHint(host: LabHost): string {
    return `${DOCKER_CLI} -H unix://${this.daemons.get(host)?.sock ?? '?'}`;
  }

  protected override daemonPids(host: LabHost): number[] {
    const pid = this.daemons.get(host)?.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  protected async stopHost(host: LabHost): Promise<void> {
    const d = this.daemons.get(host);
    if (d) await this.lab.stop(d.proc, { signal: 'SIGTERM', graceMs: 10_000 });
    const mns = this.mountNs.get(host);
    if (mns) await this.lab.stop(mns.holder);
  }
}
