#!/usr/bin/env node
// weft: the operator's CLI. Dispatch only: each command (cli/, lab/, bench/)
// brings its flag table, parsed and its help printed by lib/flags.ts.
import { readFileSync } from 'node:fs';
import { errorCode, UsageError } from '../lib/errors.js';
import { runCommand, type Command } from '../lib/flags.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const TOP_HELP = `Usage: weft <command> [flags]

Commands:
  lab        build a cluster in network namespaces on this machine (etcd, hosts
             running weftd, containers attached through CNI), show a ping matrix,
             then tear it down; 'weft lab --help' for its flags
  lab down   remove a lab left up with 'weft lab --keep'
  chaos      a lab under a seeded random schedule of faults (weftd and etcd kills,
             lease deletions, link flaps, garbage leases, ...), then checks that
             it is whole again; 'weft chaos --help' for its flags
  bench      measure the data paths (underlay, kernel VXLAN, UDP native/dgram)
             and the control plane in labs; 'weft bench --help' for its flags
  leases     list every subnet lease in etcd
  status     this node's lease, device and bridge, and every peer's reachability
  docker-opts
             write dockerd's options (--bip, --mtu, --ip-masq) for this host's
             subnet to an environment file, as flannel's mk-docker-opts.sh
  install-cni
             install weft's CNI plugin (flannel-compatible) as 'flannel' and
             'weft' into a CNI plugin directory (default /opt/cni/bin)
  help       show this help

Run 'weft <command> --help' for a command's flags. weft ${VERSION}`;

/** Loaded on demand: `weft leases` never loads the lab, the bench or the native addon. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  leases: async () => (await import('../cli/leases.js')).leasesCommand,
  status: async () => (await import('../cli/status.js')).statusCommand,
  'docker-opts': async () => (await import('../cli/docker-opts.js')).dockerOptsCommand,
  'install-cni': async () => (await import('../cni/install.js')).installCniCommand,
  lab: async () => (await import('../lab/demo.js')).labCommand,
  bench: async () => (await import('../bench/bench-command.js')).benchCommand,
  chaos: async () => (await import('../lab/chaos-command.js')).chaosCommand,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(TOP_HELP + '\n');
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version') {
    process.stdout.write(`weft ${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) throw new UsageError(`unknown command ${JSON.stringify(cmd)}; commands: lab, lab down, chaos, bench, leases, status, docker-opts, install-cni, help`);
  return runCommand(await load(), rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`weft: ${(e as Error).message}\n`);
    process.exit(errorCode(e) === 'EUSAGE' || errorCode(e) === 'EBADCONFIG' ? 2 : 1);
  },
);
