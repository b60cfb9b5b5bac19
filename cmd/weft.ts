#!/usr/bin/env node
// weft: the operator's CLI. `weft lab` builds a whole cluster in network
// namespaces on this machine; `weft leases` lists what etcd holds.
import { readFileSync } from 'node:fs';
import { parseCliArgs, CliUsageError, type CliSpec } from '../lib/flags.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const TOP_HELP = `Usage: weft <command> [flags]

Commands:
  lab        build a cluster in network namespaces on this machine (etcd, hosts
             running weftd, containers attached through CNI), show a ping matrix,
             then tear it down; 'weft lab --help' for its flags
  lab down   remove a lab left up with 'weft lab --keep'
  bench      measure the data paths (underlay, kernel VXLAN, UDP native/dgram)
             and the control plane in labs; 'weft bench --help' for its flags
  leases     list every subnet lease in etcd
  status     this node's lease, device and bridge, and every peer's reachability
  help       show this help

Run 'weft <command> --help' for a command's flags. weft ${VERSION}`;

const LEASES: CliSpec = {
  usage: 'weft leases [--etcd-endpoints URLS] [--etcd-prefix PREFIX] [--json]',
  flags: {
    'etcd-endpoints': { kind: 'string', def: process.env.WEFTD_ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379', help: 'comma-separated etcd client URLs (env WEFTD_ETCD_ENDPOINTS)' },
    'etcd-prefix': { kind: 'string', def: process.env.WEFTD_ETCD_PREFIX ?? '/coreos.com/network', help: 'etcd key prefix (env WEFTD_ETCD_PREFIX)' },
    json: { kind: 'bool', help: 'print JSON instead of a table' },
  },
};

const STATUS: CliSpec = {
  usage: 'weft status [--etcd-endpoints URLS] [--etcd-prefix PREFIX] [--subnet-file PATH] [--bridge NAME] [--timeout-ms N] [--json]',
  flags: {
    ...LEASES.flags,
    'subnet-file': { kind: 'string', def: process.env.WEFTD_SUBNET_FILE ?? '/run/flannel/subnet.env', help: 'the subnet file weftd wrote (env WEFTD_SUBNET_FILE)' },
    bridge: { kind: 'string', def: process.env.WEFTD_BRIDGE ?? 'weft0', help: 'the containers\' bridge (env WEFTD_BRIDGE)' },
    'timeout-ms': { kind: 'int', def: 1000, min: 10, max: 60000, help: 'how long to wait for echo replies' },
    json: { kind: 'bool', help: 'print JSON instead of text' },
  },
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(TOP_HELP + '\n');
      return cmd === undefined ? 2 : 0;
    case '--version':
      process.stdout.write(`weft ${VERSION}\n`);
      return 0;
    case 'leases': {
      const a = parseCliArgs(LEASES, rest);
      if (a.help) return printHelp(LEASES);
      const { listLeases } = await import('../cli/leases.js');
      return listLeases(String(a.values['etcd-endpoints']).split(','), String(a.values['etcd-prefix']), a.values.json === true);
    }
    case 'status': {
      const a = parseCliArgs(STATUS, rest);
      if (a.help) return printHelp(STATUS);
      const { gatherStatus, formatStatus } = await import('../cli/status.js');
      const s = await gatherStatus({
        endpoints: String(a.values['etcd-endpoints']).split(','),
        prefix: String(a.values['etcd-prefix']),
        subnetFile: String(a.values['subnet-file']),
        bridge: String(a.values.bridge),
        timeoutMs: Number(a.values['timeout-ms']),
      });
      process.stdout.write((a.values.json ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
      return s.etcd.ok && s.peers.every((p) => p.reachable) ? 0 : 1;
    }
    case 'lab': {
      const { labCommand } = await import('../lab/demo.js');
      return labCommand(rest);
    }
    case 'bench': {
      const { benchCommand } = await import('../bench/bench-command.js');
      return benchCommand(rest);
    }
    default:
      throw new CliUsageError(`unknown command ${JSON.stringify(cmd)}; commands: lab, lab down, bench, leases, status, help`);
  }
}

function printHelp(spec: CliSpec): number {
  const lines = [`Usage: ${spec.usage}`, ''];
  for (const [name, f] of Object.entries(spec.flags)) lines.push(`  --${name}`.padEnd(24) + f.help + (f.def !== undefined && f.kind !== 'bool' ? ` (default ${f.def})` : ''));
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`weft: ${(e as Error).message}\n`);
    process.exit(e instanceof CliUsageError ? 2 : 1);
  },
);
