// A checked TCP transfer between two lab namespaces: the receiver hashes what
// it gets, the sender what it sends (random bytes, after an optional text
// prefix), and the two SHA-256 must agree.
import { waitFor } from './agent.js';
import type { Lab } from './lab.js';

export interface TransferEnd {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface TransferResult {
  readonly bytes: number;
  readonly sentSha: string;
  readonly receivedSha: string;
  readonly receivedBytes: number;
}

/** Sends `bytes` bytes (starting with `prefix`, repeated, if given) from `from` to `to`:7000+; resolves with both hashes. */
export async function checkedTransfer(lab: Lab, from: TransferEnd, to: TransferEnd, o: { bytes: number; port?: number; prefix?: string; timeoutMs?: number }): Promise<TransferResult> {
  const port = o.port ?? 7000;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const sink = lab.spawnIn(to.ns, process.execPath, ['-e', `
    const h = require('crypto').createHash('sha256'); let n = 0;
    const s = require('net').createServer((c) => {
      c.on('data', (d) => { h.update(d); n += d.length; });
      c.on('end', () => { console.log('SHA ' + n + ' ' + h.digest('hex')); c.end(); s.close(); });
    });
    s.listen(${port}, '${to.ip}', () => console.log('LISTENING'));
    setTimeout(() => process.exit(3), ${timeoutMs});`], { logName: `sha-sink-${to.name}-${port}` });
  try {
    await waitFor(`the sink on ${to.name}`, 5000, () => lab.readLog(sink).includes('LISTENING'));
    const send = await lab.execIn(from.ns, process.execPath, ['-e', `
      const c = require('crypto');
      const text = Buffer.from(${JSON.stringify(o.prefix ?? '')}.repeat(${o.prefix ? 4096 : 0})).subarray(0, ${o.bytes});
      const data = Buffer.concat([text, c.randomBytes(${o.bytes} - text.length)]);
      console.log('SHA ' + data.length + ' ' + c.createHash('sha256').update(data).digest('hex'));
      const s = require('net').connect(${port}, '${to.ip}', () => s.end(data));
      s.on('close', () => process.exit(0));
      s.on('error', (e) => { console.error(e.message); process.exit(1); });`], { timeoutMs });
    if (send.code !== 0) throw new Error(`transfer ${from.name} -> ${to.name}: sender exited ${send.code}: ${send.stderr.trim()}`);
    const sent = /SHA (\d+) ([0-9a-f]{64})/.exec(send.stdout)!;
    await waitFor(`the sink on ${to.name} to report`, 15_000, () => lab.readLog(sink).includes('SHA '));
    const got = /SHA (\d+) ([0-9a-f]{64})/.exec(lab.readLog(sink))!;
    return { bytes: Number(sent[1]), sentSha: sent[2]!, receivedBytes: Number(got[1]), receivedSha: got[2]! };
  } finally {
    await lab.stop(sink);
  }
}
