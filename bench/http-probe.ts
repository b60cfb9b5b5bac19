#!/usr/bin/env node
// A small HTTP client the control-plane bench runs inside a lab host's
// namespace, next to weftd's health server:
//   http-probe.js poll <url> <intervalMs>   GET every intervalMs, one request at a time (a slow
//                                           answer delays the next), one line per answer:
//                                           "<epoch ms at send> <latency ms> <status>", until SIGTERM
//   http-probe.js get <url>                 one GET, the body to stdout (exit 1 unless 200)
import { Agent, get } from 'node:http';

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function request(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
    req.on('error', reject);
  });
}

async function poll(url: string, intervalMs: number): Promise<void> {
  let stop = false;
  process.on('SIGTERM', () => { stop = true; });
  while (!stop) {
    const sent = Date.now();
    const t0 = process.hrtime.bigint();
    let status = 0;
    try {
      status = (await request(url)).status;
    } catch {
      status = -1;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${sent} ${ms.toFixed(3)} ${status}\n`);
    const wait = intervalMs - (Date.now() - sent);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  agent.destroy();
}

async function main(): Promise<number> {
  const [mode, url, interval] = process.argv.slice(2);
  if (mode === 'poll' && url && Number(interval) > 0) {
    await poll(url, Number(interval));
    return 0;
  }
  if (mode === 'get' && url) {
    const r = await request(url);
    agent.destroy();
    process.stdout.write(r.body);
    return r.status === 200 ? 0 : 1;
  }
  process.stderr.write('usage: http-probe.js poll <url> <intervalMs> | get <url>\n');
  return 2;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`http-probe: ${(e as Error).message}\n`);
  process.exit(1);
});
