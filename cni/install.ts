// `weft install-cni`: puts the plugin where runtimes look for plugins, under
// the names `flannel` (so configs written for flannel work unchanged) and
// `weft`: each a two-line shell wrapper that execs this Node.js on
// dist/cmd/weft-cni.js. Written atomically; a file of that name that weft did
// not write (a real flannel binary, say) is left alone unless --force.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';

export const PLUGIN_ENTRY = fileURLToPath(new URL('../cmd/weft-cni.js', import.meta.url));
export const DEFAULT_BIN_DIR = '/opt/cni/bin';
export const DEFAULT_NAMES: readonly string[] = ['flannel', 'weft'];
const MARKER = 'written by `weft install-cni`';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function wrapperScript(node = process.execPath, entry = PLUGIN_ENTRY): string {
  return `#!/bin/sh\n# weft's CNI plugin (flannel-compatible), ${MARKER}; run it again to update.\nexec ${quote(node)} ${quote(entry)} "$@"\n`;
}

export interface InstallOptions {
  readonly binDir: string;
  readonly names?: readonly string[];
  readonly force?: boolean;
  readonly node?: string;
  readonly entry?: string;
}

/** Writes one wrapper per name; returns the paths written. Throws naming a foreign file it would replace. */
export function installPlugin(o: InstallOptions): string[] {
  const names = o.names ?? DEFAULT_NAMES;
  for (const n of names) if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n)) throw new UsageError(`invalid plugin name ${JSON.stringify(n)}`);
  const text = wrapperScript(o.node, o.entry);
  mkdirSync(o.binDir, { recursive: true, mode: 0o755 });
  const paths = names.map((n) => join(o.binDir, n));
  for (const p of paths) {
    if (!o.force && existsSync(p) && !readFileSync(p).toString('latin1').includes(MARKER)) {
      throw new UsageError(`${p} exists and was not written by weft (a flannel binary?); move it away or pass --force to replace it`);
    }
  }
  for (const p of paths) {
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o755 });
    chmodSync(tmp, 0o755);
    renameSync(tmp, p);
  }
  return paths;
}

const FLAGS: FlagSet = {
  command: 'weft install-cni',
  about: 'Installs weft\'s CNI plugin into a CNI plugin directory, under the names flannel and weft: a small wrapper that runs this Node.js on weft-cni.js. Containers then attach with a config of "type": "flannel" (or "weft"), which delegates to bridge and host-local, so those must be in CNI_PATH too (Debian: containernetworking-plugins, /usr/lib/cni).',
  flags: [
    { name: 'bin-dir', kind: 'string', def: DEFAULT_BIN_DIR, check: (v) => (v.startsWith('/') ? undefined : 'must be an absolute path'), help: 'directory to write the plugin to (one the runtime lists in CNI_PATH / cni_plugin_dirs)' },
    { name: 'names', kind: 'list', def: DEFAULT_NAMES.join(','), help: 'names to install the plugin as' },
    { name: 'force', kind: 'bool', help: 'replace files of those names that weft did not write' },
  ],
  footer: 'Exit status: 0 when written, 1 when a file could not be written, 2 on bad flags or a foreign file without --force.',
};

export const installCniCommand: Command = {
  flags: FLAGS,
  run: async (p: ParsedFlags) => {
    const paths = installPlugin({ binDir: p.values['bin-dir'] as string, names: p.values.names as string[], force: p.values.force === true });
    process.stdout.write(`installed ${paths.join(', ')} (runs ${process.execPath} ${PLUGIN_ENTRY})\n`);
    return 0;
  },
};
