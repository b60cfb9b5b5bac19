#!/usr/bin/env node
// weft: the operator's CLI. `weft lab` builds a whole cluster in network
// namespaces on this machine; `weft leases` lists what etcd holds.
import { readFileSync } from 'node:fs';
import { parseCliArgs, CliUsageError, type CliSpec } from './cli-args.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const TOP_HELP = `Usage: weft <command> [flags]

Commands:
  lab        build a cluster in network namespaces on this machine (etcd, hosts
             running weftd, containers attached through CNI), show a ping matrix,
             then tear it down; 'weft lab --help' for its flags
  lab down   remove a lab left up with 'weft lab --keep'
  leases     list every subnet lease in etcd
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
      const { listLeases } = await import('./leases-command.js');
      return listLeases(String(a.values['etcd-endpoints']).split(','), String(a.values['etcd-prefix']), a.values.json === true);
    }
    case 'lab': {
      const { labCommand } = await import('../lab/demo.js');
      return labCommand(rest);
    }
    default:
      throw new CliUsageError(`unknown command ${JSON.stringify(cmd)}; commands: lab, lab down, leases, help`);
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
