// One repetition of the data-path measurements between two namespaces:
// ping RTTs on the idle path first, then iperf3 TCP with 1 and N streams (the
// agents' CPU time and the whole machine's are read around these), then iperf3
// UDP with small packets (packets per second) and with large ones (Gbit/s) (IPv4;
// over IPv6 the bench measures ping and TCP only).
import { iperf, type IperfTcpResult, type IperfUdpResult } from '../lab/iperf.js';
import type { Lab } from '../lab/lab.js';
import { ping } from '../lab/ping.js';
import type { PathEndpoints } from './data-paths.js';
import { machineBusySeconds, parseTcpDrops, parseUdpRcvbufErrors, tcpDropsDelta, totalCpuSeconds, type TcpDrops } from './proc-stats.js';
import { percentile } from './stats.js';

export interface MeasureSettings {
  /** iperf3 -t for each run. */
  seconds: number;
  /** Parallel TCP streams of the second TCP run. */
  streams: number;
  /** UDP payload length (-l) of the small-packet run and rate (-b) of both UDP runs. */
  udpLength: number;
  udpBitrate: string;
  /**
   * UDP payload length of the large-datagram run: the inner datagram must fit the path's MTU
   * unfragmented (1400 + 28 B of IPv4 and UDP headers: VXLAN's 1450, udp's 1472); a path whose
   * MTU is smaller (WireGuard's 1420) gets its MTU - 28 (largeUdpLength).
   */
  udpLargeLength: number;
  pings: number;
  pingIntervalMs: number;
}

/** The figures of one repetition over one address family: ping, then TCP with 1 and N streams; undefined where a figure does not apply (no agents on the underlay). */
export interface TcpPingFigures {
  tcp1Gbps: number;
  tcpNGbps: number;
  tcp1Retransmits: number;
  tcpNRetransmits: number;
  pingP50Ms: number | undefined;
  pingP99Ms: number | undefined;
  pingLossPct: number;
  /** Agent CPU seconds (utime+stime of every weftd) during both TCP runs. */
  agentCpuSeconds: number | undefined;
  /** Bytes the receiver got in both TCP runs. */
  tcpBytes: number;
  agentCpuSecondsPerGB: number | undefined;
  /** CPU seconds of the whole machine (all cores, softirq included) during both TCP runs. */
  machineCpuSeconds: number;
  machineCpuSecondsPerGB: number | undefined;
  /** Where the TCP receiver dropped segments during both TCP runs (TcpExt of its namespace): what the retransmits were. */
  receiverTcpDrops: TcpDrops;
}

/** One repetition's IPv4 figures: ping and TCP, then iperf3 UDP with small packets and with large datagrams. */
export interface RepFigures extends TcpPingFigures {
  udpKpps: number;
  udpLossPct: number;
  /** UDP payload bits the receiver got per second (delivered datagrams x length), large datagrams. */
  udpLargeGbps: number;
  udpLargeLossPct: number;
  /** Large datagrams the receiver's full socket buffer dropped (Udp RcvbufErrors of its namespace): how much of the loss was the receiving application's. */
  udpLargeRcvbufErrors: number;
}

/** IPv4 and UDP headers in front of an iperf3 -l payload. */
const IPV4_UDP_HEADERS = 28;

/** The large-datagram payload length on a path with this inner MTU: the setting, or less where the MTU needs it (no IP fragments). */
export function largeUdpLength(setting: number, mtu: number | undefined): number {
  return mtu === undefined ? setting : Math.min(setting, mtu - IPV4_UDP_HEADERS);
}

export type Step = (what: string) => void;

/** One IPv4 repetition: ping, TCP 1 and N streams, then UDP with small packets and with large datagrams. */
export async function measureOnce(lab: Lab, ep: PathEndpoints, s: MeasureSettings, step: Step): Promise<RepFigures> {
  const t = await measureTcpPing(lab, ep, s, step);
  const udp = async (length: number) =>
    (await iperf(lab, { fromNs: ep.fromNs, toNs: ep.toNs, dstIp: ep.dstIp, seconds: s.seconds, udp: { length, bitrate: s.udpBitrate } })) as IperfUdpResult;
  const u = await udp(s.udpLength);
  step(`UDP ${s.udpLength} B: ${(u.deliveredPerSecond / 1e3).toFixed(1)} kpps delivered, ${u.lostPct.toFixed(1)}% lost`);
  const large = largeUdpLength(s.udpLargeLength, ep.mtu);
  const rcvbuf0 = await receiverUdpRcvbufErrors(lab, ep.toNs);
  const l = await udp(large);
  const rcvbuf = (await receiverUdpRcvbufErrors(lab, ep.toNs)) - rcvbuf0;
  const gbps = (l.deliveredPerSecond * large * 8) / 1e9;
  step(`UDP ${large} B: ${gbps.toFixed(2)} Gbit/s delivered, ${l.lostPct.toFixed(1)}% lost (${rcvbuf} at the receiver's full socket)`);
  return { ...t, udpKpps: u.deliveredPerSecond / 1e3, udpLossPct: u.lostPct, udpLargeGbps: gbps, udpLargeLossPct: l.lostPct, udpLargeRcvbufErrors: rcvbuf };
}

/**
 * Ping RTTs on the idle path, then TCP with 1 and N streams to ep.dstIp, with the agents' CPU
 * time and the whole machine's read around the TCP runs: all the bench measures over IPv6.
 */
export async function measureTcpPing(lab: Lab, ep: PathEndpoints, s: MeasureSettings, step: Step): Promise<TcpPingFigures> {
  const base = { fromNs: ep.fromNs, toNs: ep.toNs, dstIp: ep.dstIp, seconds: s.seconds };

  const p = await ping(ep.fromNs, ep.dstIp, { count: s.pings, intervalMs: s.pingIntervalMs, timeoutS: 1 });
  const p50 = percentile(p.rtts, 50);
  const p99 = percentile(p.rtts, 99);
  step(`ping x${s.pings}: p50 ${fmt(p50, 3)} ms, p99 ${fmt(p99, 3)} ms, loss ${p.lossPct}%`);

  const drops0 = await receiverTcpDrops(lab, ep.toNs);
  const cpu0 = ep.agentPids.length ? totalCpuSeconds(ep.agentPids) : undefined;
  const machine0 = machineBusySeconds();
  const t1 = (await iperf(lab, { ...base, streams: 1 })) as IperfTcpResult;
  step(`TCP 1 stream: ${(t1.bitsPerSecond / 1e9).toFixed(2)} Gbit/s (${t1.retransmits} retransmits)`);
  const tN = (await iperf(lab, { ...base, streams: s.streams })) as IperfTcpResult;
  step(`TCP ${s.streams} streams: ${(tN.bitsPerSecond / 1e9).toFixed(2)} Gbit/s (${tN.retransmits} retransmits)`);
  const cpu1 = ep.agentPids.length ? totalCpuSeconds(ep.agentPids) : undefined;
  const machineCpuSeconds = machineBusySeconds() - machine0;
  const drops = tcpDropsDelta(drops0, await receiverTcpDrops(lab, ep.toNs));

  const tcpBytes = t1.bytes + tN.bytes;
  const agentCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  return {
    tcp1Gbps: t1.bitsPerSecond / 1e9,
    tcpNGbps: tN.bitsPerSecond / 1e9,
    tcp1Retransmits: t1.retransmits,
    tcpNRetransmits: tN.retransmits,
    pingP50Ms: p50,
    pingP99Ms: p99,
    pingLossPct: p.lossPct,
    agentCpuSeconds,
    tcpBytes,
    agentCpuSecondsPerGB: agentCpuSeconds !== undefined && tcpBytes > 0 ? agentCpuSeconds / (tcpBytes / 1e9) : undefined,
    machineCpuSeconds,
    machineCpuSecondsPerGB: tcpBytes > 0 ? machineCpuSeconds / (tcpBytes / 1e9) : undefined,
    receiverTcpDrops: drops,
  };
}

/** The receiving namespace's TCP drop counters (/proc/net/netstat is per network namespace). */
async function receiverTcpDrops(lab: Lab, ns: string): Promise<TcpDrops> {
  const r = await lab.execIn(ns, 'cat', ['/proc/net/netstat']);
  if (r.code !== 0) throw new Error(`cat /proc/net/netstat in ${ns}: exit ${r.code}: ${r.stderr.trim()}`);
  return parseTcpDrops(r.stdout);
}

/** The receiving namespace's Udp RcvbufErrors (/proc/net/snmp is per network namespace). */
async function receiverUdpRcvbufErrors(lab: Lab, ns: string): Promise<number> {
  const r = await lab.execIn(ns, 'cat', ['/proc/net/snmp']);
  if (r.code !== 0) throw new Error(`cat /proc/net/snmp in ${ns}: exit ${r.code}: ${r.stderr.trim()}`);
  return parseUdpRcvbufErrors(r.stdout);
}

/** A short check that the path carries packets at all, before anything is timed. */
export async function checkReachable(ep: PathEndpoints): Promise<void> {
  const r = await ping(ep.fromNs, ep.dstIp, { count: 3, intervalMs: 100, timeoutS: 2 });
  if (r.received === 0) throw new Error(`no ping reply from ${ep.dstIp} (${ep.describe}):\n${r.output.trim().split('\n').slice(-3).join('\n')}`);
}

export function fmt(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}
