// Running the delegate plugin as the CNI spec runs any plugin (and as libcni's
// invoke.Delegate* does for flannel's): found by its type in CNI_PATH, exec'd
// with this plugin's own CNI_* environment and the delegate's config on stdin.
// Its result is passed through unchanged; its error object too, so the
// runtime sees the delegate's code and message.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniError, CNI_ERR, type CniCommand } from './spec.js';

/** The first executable named `type` in the CNI_PATH directories. */
export function findPlugin(type: string, path: readonly string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) {
    throw new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, `delegate type ${JSON.stringify(type)} is not a plugin name`);
  }
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  throw new CniError(CNI_ERR.DELEGATE_FAILED, `failed to find plugin ${JSON.stringify(type)} in path [${path.join(' ')}]`, 'install containernetworking-plugins, or add the directory holding it to CNI_PATH');
}

/** Runs the delegate; resolves to its stdout when it exits 0, else throws its error as a CniError. */
export function invokeDelegate(
  command: CniCommand,
  type: string,
  stdin: string,
  env: Readonly<Record<string, string | undefined>>,
  path: readonly string[],
): Promise<string> {
  const bin = findPlugin(type, path);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, CNI_COMMAND: command } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.stdin.on('error', () => { /* it may exit without reading */ });
    child.stdin.end(stdin);
    child.on('error', (e) => reject(new CniError(CNI_ERR.DELEGATE_FAILED, `cannot run the delegate ${bin}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(stdout);
        return;
      }
      reject(delegateError(type, command, stdout, stderr, code === null ? `signal ${signal}` : `exit ${code}`));
    });
  });
}

/** The delegate's own error object when it printed one, else what it wrote, named. */
export function delegateError(type: string, command: string, stdout: string, stderr: string, how: string): CniError {
  try {
    const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === 'number' && typeof e.msg === 'string') return new CniError(e.code, e.msg, typeof e.details === 'string' ? e.details : '');
  } catch {
    /* not an error object */
  }
  const text = (stderr.trim() || stdout.trim() || '(no output)').slice(0, 2000);
  return new CniError(CNI_ERR.DELEGATE_FAILED, `delegate ${type} ${command} failed (${how}): ${text}`);
}
