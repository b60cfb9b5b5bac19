// What the lab's two container runtimes share. Docker and Podman take the
// same CLI verbs (run, exec, inspect, rm, import), so a runtime is: how to
// start it on a lab host (./docker.ts, ./podman.ts), how to run its CLI there,
// and how to stop it. Containers run the busybox image (./image.ts) with its
// web server as the main process, in a cgroup named after the lab; removal
// at teardown is rm -f of every container, then the daemon, then the cgroups.
import type { Lab, LabHost } from '../lab.js';
import { type ExecOptions, type ExecResult } from '../netns.js';
import type { PingTarget } from '../ping.js';
import { findLabCgroups } from './cgroups.js';
import { CONTAINER_CMD, IMAGE } from './image.js';
import type { HostMountNs } from './mount-ns.js';

export type RuntimeKind = 'docker' | 'podman';

/** An unassigned address on the lab's underlay given to containers as their DNS server: nothing leaks to the machine's resolver. Tests use IPs. */
export const LAB_DNS = '192.0.2.53';

export interface RuntimeContainer extends PingTarget {
  readonly name: string;
  readonly host: LabHost;
  readonly id: string;
  /** 10.244.3.2 */
  readonly ip: string;
  /** 10.244.3.2/24 */
  readonly cidr: string;
  /** The container's first process (its network namespace: /proc/<pid>/ns/net). */
  readonly pid: number;
  /** Runs a command inside the container (docker exec / podman exec). */
  exec(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export abstract class ContainerRuntime {
  abstract readonly kind: RuntimeKind;
  readonly containers: RuntimeContainer[] = [];
  protected readonly mountNs = new Map<LabHost, HostMountNs>();
  private readonly perHost = new Map<LabHost, number>();

  constructor(protected readonly lab: Lab) {
    lab.onTeardown(() => this.teardown());
  }

  /** What must exist before weftd starts (podman: weft's CNI plugin in the lab's plugin directory). */
  async prepare(): Promise<void> {}
  /** weftd flags a host of this runtime runs with. */
  abstract weftdArgs(host: LabHost): string[];
  /** Starts the runtime on a host whose weftd is ready, and loads the image. */
  abstract startHost(host: LabHost): Promise<void>;
  /** The runtime's CLI on that host. Never rejects on a non-zero exit. */
  abstract cli(host: LabHost, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** The CLI on that host as a shell command prefix, for people (weft lab --keep prints it). */
  abstract cliHint(host: LabHost): string;
  /** Stops the host's daemon (if it has one) after its containers are gone. */
  protected abstract stopHost(host: LabHost): Promise<void>;
  /** Pids whose cgroups a relative --cgroup-parent is relative to (dockerd's). */
  protected daemonPids(_host: LabHost): number[] {
    return [];
  }

  /** The --cgroup-parent of a host's containers: relative, named after the lab. */
  cgroupParent(host: LabHost): string {
    return `${this.lab.cgroupPrefix}${host.name}`;
  }

  async cliOk(host: LabHost, args: readonly string[], opts?: ExecOptions): Promise<string> {
    const r = await this.cli(host, args, opts);
    if (r.code !== 0) throw new Error(`${this.kind} ${args.join(' ')} on ${host.name}: exit ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Runs a container named <host>c<n> (or `name`) on the host; resolves once it has its address. */
  async run(host: LabHost, name?: string): Promise<RuntimeContainer> {
    const n = (this.perHost.get(host) ?? 0) + 1;
    this.perHost.set(host, n);
    const cname = name ?? `${host.name}c${n}`;
    const id = (await this.cliOk(host, ['run', '-d', '--name', cname, '--hostname', cname, '--cgroup-parent', this.cgroupParent(host), IMAGE, ...CONTAINER_CMD], { timeoutMs: 60_000 })).trim();
    this.recordCgroups(host);
    const pid = Number((await this.cliOk(host, ['inspect', '-f', '{{.State.Pid}}', cname])).trim());
    const exec = (cmd: string, args: readonly string[], opts?: ExecOptions) => this.cli(host, ['exec', cname, cmd, ...args], opts);
    const addr = await exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    const cidr = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(addr.stdout)?.[1];
    if (!cidr) throw new Error(`${this.kind} container ${cname} on ${host.name} has no IPv4 address on eth0: ${addr.stdout}${addr.stderr}`);
    const c: RuntimeContainer = { name: cname, host, id, ip: cidr.split('/')[0]!, cidr, pid, exec };
    this.containers.push(c);
    return c;
  }

  /** `rm -f`: the runtime stops the container and releases its network (CNI DEL for podman). */
  async remove(c: RuntimeContainer): Promise<void> {
    await this.cliOk(c.host, ['rm', '-f', ...(this.kind === 'podman' ? ['-t', '0'] : []), c.name], { timeoutMs: 60_000 });
    this.containers.splice(this.containers.indexOf(c), 1);
  }

  /** The pid holding a host's mount namespace: `nsenter --target PID --mount --net` sees what the runtime sees. */
  mountNsPid(host: LabHost): number | undefined {
    return this.mountNs.get(host)?.pid;
  }

  /** The hosts the runtime was started on. */
  get hosts(): LabHost[] {
    return [...this.mountNs.keys()];
  }

  private recordCgroups(host: LabHost): void {
    for (const d of findLabCgroups(this.cgroupParent(host), this.daemonPids(host))) if (!this.lab.cgroupDirs.includes(d)) this.lab.cgroupDirs.push(d);
  }

  /** Every container (with SIGKILL, no grace: the lab is going away), then the daemons. */
  private async teardown(): Promise<void> {
    const errors: string[] = [];
    await Promise.all(this.hosts.map(async (h) => {
      try {
        const ids = (await this.cliOk(h, ['ps', '-aq'], { timeoutMs: 20_000 })).split('\n').filter(Boolean);
        if (ids.length) await this.cliOk(h, ['rm', '-f', ...(this.kind === 'podman' ? ['-t', '0'] : []), ...ids], { timeoutMs: 60_000 });
      } catch (e) {
        errors.push((e as Error).message); // the cgroup sweep still kills what is left
      }
      try {
        await this.stopHost(h);
      } catch (e) {
        errors.push(`stopping ${this.kind} on ${h.name}: ${(e as Error).message}`);
      }
    }));
    this.containers.length = 0;
    if (errors.length) throw new Error(errors.join('; '));
  }
}
