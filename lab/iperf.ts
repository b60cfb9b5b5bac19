// iperf3 between two lab namespaces: a one-shot server (`iperf3 -s -1`) in the
// destination, the client with `-J` in the source, parsed into a small result.
//   iperf(lab, { fromNs, toNs, dstIp, seconds, streams?, udp? })   one bounded run
//   parseIperfTcp(json), parseIperfUdp(json)                      the parsers, for tests
import type { Lab } from './lab.js';

export interface IperfTcpResult {
  kind: 'tcp';
  streams: number;
  seconds: number;
  /** What the receiver got. */
  bytes: number;
  bitsPerSecond: number;
  retransmits: number;
}

export interface IperfUdpResult {
  kind: 'udp';
  /** UDP payload length (-l). */
  length: number;
  seconds: number;
  /** Datagrams the sender sent. */
  sent: number;
  /** Datagrams the receiver got (sent − lost). */
  delivered: number;
  deliveredPerSecond: number;
  lostPct: number;
}

export type IperfResult = IperfTcpResult | IperfUdpResult;

export interface IperfOptions {
  fromNs: string;
  toNs: string;
  dstIp: string;
  /** iperf3 -t; the lab keeps loads bounded, so at most 10. */
  seconds: number;
  /** iperf3 -P (TCP). Default 1. */
  streams?: number;
  /** UDP with this payload length and rate: -u -l <length> -b <bitrate> (0 = as fast as the sender can). */
  udp?: { length: number; bitrate: string };
  /** iperf3 -w: the socket buffers of both ends (e.g. '4M'); default iperf3's (the kernel's). */
  window?: string;
  /** Default 5201. */
  port?: number;
}

export class IperfError extends Error {
  readonly code = 'EIPERF';
}

/** One iperf3 run: starts the one-shot server, waits for it to listen, runs the client, parses its JSON. */
export async function iperf(lab: Lab, o: IperfOptions): Promise<IperfResult> {
  if (!(o.seconds > 0 && o.seconds <= 10)) throw new IperfError(`iperf seconds must be in (0, 10], got ${o.seconds}`);
  const port = String(o.port ?? 5201);
  const server = lab.spawnIn(o.toNs, 'iperf3', ['-s', '-1', '--forceflush', '-B', o.dstIp, '-p', port], { logName: `iperf3-server-${Date.now()}` });
  try {
    await waitListening(lab, server);
    const args = ['-c', o.dstIp, '-p', port, '-J', '-t', String(o.seconds), '--connect-timeout', '3000'];
    if (o.udp) args.push('-u', '-l', String(o.udp.length), '-b', o.udp.bitrate);
    else args.push('-P', String(o.streams ?? 1));
    if (o.window) args.push('-w', o.window);
    const r = await lab.execIn(o.fromNs, 'iperf3', args, { timeoutMs: (o.seconds + 20) * 1000 });
    let json: IperfJson;
    try {
      json = JSON.parse(r.stdout) as IperfJson;
    } catch {
      throw new IperfError(`iperf3 ${args.join(' ')} (exit ${r.code}) printed no JSON: ${(r.stdout + r.stderr).trim().slice(0, 500)}`);
    }
    if (json.error) throw new IperfError(`iperf3 ${args.join(' ')}: ${json.error}`);
    return o.udp ? parseIperfUdp(json, o.udp.length) : parseIperfTcp(json, o.streams ?? 1);
  } finally {
    await lab.stop(server, { graceMs: 1000 });
  }
}

async function waitListening(lab: Lab, server: ReturnType<Lab['spawnIn']>): Promise<void> {
  for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new IperfError(`iperf3 server exited (${server.exitCode ?? server.signalCode}): ${lab.readLog(server).trim().slice(-500)}`);
    }
    if (lab.readLog(server).includes('Server listening')) return;
  }
  throw new IperfError(`iperf3 server did not listen within 5 s: ${lab.readLog(server).trim().slice(-500)}`);
}

interface IperfSum {
  seconds?: number;
  bytes?: number;
  bits_per_second?: number;
  retransmits?: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
}

interface IperfJson {
  error?: string;
  end?: { sum?: IperfSum; sum_sent?: IperfSum; sum_received?: IperfSum };
}

const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new IperfError(`iperf3 JSON has no numeric ${what}, got ${JSON.stringify(v)}`);
  return v;
};

export function parseIperfTcp(json: IperfJson, streams: number): IperfTcpResult {
  const rcv = json.end?.sum_received;
  const snd = json.end?.sum_sent;
  return {
    kind: 'tcp',
    streams,
    seconds: num(rcv?.seconds, 'end.sum_received.seconds'),
    bytes: num(rcv?.bytes, 'end.sum_received.bytes'),
    bitsPerSecond: num(rcv?.bits_per_second, 'end.sum_received.bits_per_second'),
    retransmits: snd?.retransmits ?? 0,
  };
}

/**
 * iperf3 ≥ 3.11 reports the receiver's count in end.sum_received.packets;
 * older ones only end.sum with the receiver's lost_packets.
 */
export function parseIperfUdp(json: IperfJson, length: number): IperfUdpResult {
  const sum = json.end?.sum;
  const rcv = json.end?.sum_received;
  const snd = json.end?.sum_sent;
  const seconds = num(rcv?.seconds ?? sum?.seconds, 'end.sum.seconds');
  const sent = num(snd?.packets ?? sum?.packets, 'end.sum.packets');
  const lost = num(sum?.lost_packets ?? rcv?.lost_packets, 'end.sum.lost_packets');
  const delivered = rcv?.packets !== undefined && rcv.packets > 0 ? rcv.packets - (rcv.lost_packets ?? 0) : Math.max(0, sent - lost);
  const total = delivered + lost;
  return {
    kind: 'udp',
    length,
    seconds,
    sent,
    delivered,
    deliveredPerSecond: seconds > 0 ? delivered / seconds : 0,
    lostPct: total > 0 ? (100 * lost) / total : 100,
  };
}
