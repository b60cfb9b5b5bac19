#!/usr/bin/env node
// weft-cni: weft's CNI plugin (flannel-compatible), run by container runtimes
// with CNI_* variables and the network config on stdin. Installed under the
// names `flannel` and `weft` by `weft install-cni`. The plugin is cni/plugin.ts.
import { readFileSync } from 'node:fs';
import { runPlugin } from '../cni/plugin.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const ABOUT = `CNI Plugin weft version ${VERSION} (linux/${process.arch}): flannel-compatible, delegates to bridge + host-local with this host's subnet from subnet.env`;

const HELP = `Usage: CNI_COMMAND=ADD|DEL|CHECK|VERSION|STATUS|GC CNI_CONTAINERID=... CNI_NETNS=... CNI_IFNAME=... CNI_PATH=... weft-cni < netconf.json

${ABOUT}.
A container runtime runs this; people install it with 'weft install-cni' (as 'flannel' and 'weft'
in /opt/cni/bin by default). Network config keys: subnetFile (/run/flannel/subnet.env),
dataDir (/var/lib/cni/flannel), delegate, ipam, subnetFileTimeout (seconds ADD waits for
weftd to write subnet.env, default 10). Results and errors are printed as the CNI spec says.`;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (arg === '--help' || arg === '-h') {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (arg === '--version') {
    process.stdout.write(`weft-cni ${VERSION}\n`);
    return 0;
  }
  // Without CNI_COMMAND the plugin only says what it is, and must not wait for stdin.
  const stdin = process.env.CNI_COMMAND ? await readStdin() : '';
  const r = await runPlugin(process.env, stdin, ABOUT);
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.stdout) process.stdout.write(r.stdout);
  return r.status;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => {
    // Still an error object, so the runtime can report it.
    process.stdout.write(JSON.stringify({ code: 999, msg: `weft-cni: unexpected failure: ${(e as Error).message ?? e}` }) + '\n');
    process.exitCode = 1;
  },
);
