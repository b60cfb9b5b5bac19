// `weft docker-opts`: flannel's mk-docker-opts.sh. Reads subnet.env and
// writes an environment file for dockerd, so Docker's docker0 takes this
// host's subnet and the overlay MTU:
//   DOCKER_OPT_BIP="--bip=10.244.3.1/24"
//   DOCKER_OPT_IPMASQ="--ip-masq=false"      (false when weftd masquerades, else true)
//   DOCKER_OPT_MTU="--mtu=1450"
//   DOCKER_OPTS=" --bip=10.244.3.1/24 --ip-masq=false --mtu=1450"
// The script's short options work too (-f -d -i -c -m -k). Unlike the script,
// a missing subnet.env is waited for (--wait) and then an error, never an
// empty DOCKER_OPTS that would start Docker on the wrong subnet.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { waitForSubnetEnv } from '../host/subnet-env.js';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';

const FLAGS: FlagSet = {
  command: 'weft docker-opts',
  usage: 'weft docker-opts [--subnet-file FILE] [--output FILE] [--individual] [--combined] [--omit-ip-masq] [--key NAME] [--wait N]\n       (or mk-docker-opts.sh\'s: -f FILE -d FILE -i -c -m -k NAME)',
  about: 'Writes dockerd options for this host\'s weft subnet (--bip, --mtu, --ip-masq) as an environment file, like flannel\'s mk-docker-opts.sh; docker.service reads it (deploy/docker.service.d/weft.conf).',
  flags: [
    { name: 'subnet-file', kind: 'string', def: '/run/flannel/subnet.env', help: 'subnet.env written by weftd (-f)' },
    { name: 'output', kind: 'string', def: '/run/docker_opts.env', help: 'environment file to write (-d)' },
    { name: 'individual', kind: 'bool', help: 'write the DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU variables (-i)' },
    { name: 'combined', kind: 'bool', help: 'write the combined variable (-c); with neither -i nor -c, both are written' },
    { name: 'omit-ip-masq', kind: 'bool', help: 'leave out --ip-masq (-m)' },
    { name: 'key', kind: 'string', def: 'DOCKER_OPTS', check: (v) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? undefined : 'must be a shell variable name'), help: 'name of the combined variable (-k), e.g. DOCKER_NETWORK_OPTIONS' },
    { name: 'wait', kind: 'int', def: 10, min: 0, max: 600, help: 'seconds to wait for weftd to write the subnet file' },
  ],
  footer: 'Exit status: 0 when written, 1 when weftd is not ready or subnet.env is unusable, 2 on bad flags.',
};

const SHORT: Record<string, string> = { f: 'subnet-file', d: 'output', k: 'key', i: 'individual', c: 'combined', m: 'omit-ip-masq' };
const SHORT_WITH_VALUE = new Set(['f', 'd', 'k']);

/** mk-docker-opts.sh's getopts letters ("-f FILE", "-fFILE", "-ic") as the long flags. */
export function expandShortOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!/^-[a-zA-Z?]/.test(a)) {
      out.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const letter = a[j]!;
      if (letter === 'h' || letter === '?') {
        out.push('--help');
        continue;
      }
      const long = SHORT[letter];
      if (!long) throw new UsageError(`unknown option -${letter} (see weft docker-opts --help)`);
      if (!SHORT_WITH_VALUE.has(letter)) {
        out.push(`--${long}`);
        continue;
      }
      const rest = a.slice(j + 1);
      const value = rest !== '' ? rest : argv[++i];
      if (value === undefined) throw new UsageError(`option -${letter} needs a value`);
      out.push(`--${long}=${value}`);
      break;
    }
  }
  return out;
}

export interface DockerOptsInput {
  /** FLANNEL_SUBNET as written: 10.244.3.1/24 */
  readonly subnetAddress: string;
  readonly mtu: number;
  /** FLANNEL_IPMASQ as written */
  readonly ipMasq: string;
}

export interface DockerOptsChoice {
  readonly individual: boolean;
  readonly combined: boolean;
  readonly omitIpMasq: boolean;
  readonly key: string;
  /** The variable's value already in the environment, prepended as the script does. */
  readonly existing?: string;
}

/** The file's text, line for line what mk-docker-opts.sh writes. */
export function formatDockerOpts(e: DockerOptsInput, c: DockerOptsChoice): string {
  if (e.ipMasq !== 'true' && e.ipMasq !== 'false') throw new Error(`Invalid value of FLANNEL_IPMASQ: ${e.ipMasq} (must be true or false)`);
  const vars: Array<[string, string]> = [['DOCKER_OPT_BIP', `--bip=${e.subnetAddress}`]];
  // weftd masquerading (FLANNEL_IPMASQ=true) means Docker must not do it a second time.
  if (!c.omitIpMasq) vars.push(['DOCKER_OPT_IPMASQ', `--ip-masq=${e.ipMasq === 'true' ? 'false' : 'true'}`]);
  vars.push(['DOCKER_OPT_MTU', `--mtu=${e.mtu}`]);
  const both = !c.individual && !c.combined;
  const lines: string[] = [];
  if (c.individual || both) for (const [k, v] of vars) lines.push(`${k}="${v}"`);
  if (c.combined || both) {
    const joined = vars.map(([, v]) => ` ${v}`).join('');
    lines.push(`${c.key}="${c.existing ? `${c.existing} ` : ''}${joined}"`);
  }
  return lines.join('\n') + '\n';
}

async function run(p: ParsedFlags): Promise<number> {
  const v = p.values;
  const env = await waitForSubnetEnv(v['subnet-file'] as string, (v.wait as number) * 1000);
  if (!env.subnetAddress || env.mtu === undefined || env.ipMasq === undefined) {
    throw new Error(`${v['subnet-file'] as string} has no FLANNEL_SUBNET (docker's --bip is IPv4)`);
  }
  const key = v.key as string;
  const text = formatDockerOpts(
    { subnetAddress: env.subnetAddress, mtu: env.mtu, ipMasq: env.ipMasq },
    { individual: v.individual === true, combined: v.combined === true, omitIpMasq: v['omit-ip-masq'] === true, key, existing: process.env[key] },
  );
  const out = v.output as string;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, out);
  return 0;
}

export const dockerOptsCommand: Command = { flags: FLAGS, rewriteArgs: expandShortOptions, run };
