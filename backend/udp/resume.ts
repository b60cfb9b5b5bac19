// A restarted weftd forwards again before it has talked to etcd: the udp
// plug-in's resume() takes the TUN queues and UDP sockets back from the fd
// holder the previous weftd left (holder.ts; what arrived meanwhile waits in
// them), or, with no holder, attaches to the persistent TUN by name, and starts
// the native engine on the table that weftd saved (state.ts). The daemon later
// creates the backend, which adopts what runs when the network config and flags
// still match (backend.ts) and re-creates it otherwise.
// Only the native engine resumes; the dgram engine starts when etcd answers
// (its TUN is persistent all the same, so nothing leaks meanwhile).
import { nullLogger } from '../../lib/log.js';
import { Prefix } from '../../lib/ip.js';
import { native } from '../../native/index.js';
import type { NetlinkHandle } from '../../netlink/index.js';
import type { ResumeContext, ResumeResult, Resumed } from '../backend.js';
import { defaultUdpWorkers, type UdpFlagValues } from './config.js';
import { endHolder, findHolders, holderName, spawnHolder, takeFromHolder, type Holder } from './holder.js';
import { NativeEngine } from './native-engine.js';
import { readUdpState, removeUdpState, statePath, type UdpState } from './state.js';
import { ForwardingTable } from './table.js';
import { closeTun, openTun, removeTun, tunMismatch, type TunDevice } from './tun-device.js';

export interface ResumedUdp extends Resumed {
  readonly type: 'udp';
  readonly state: UdpState;
  readonly dev: TunDevice;
  readonly engine: NativeEngine;
  /** The holder of dev and the engine's sockets. */
  readonly holder: Holder;
  /**
   * close(), synchronously: the engine's threads are joined and the queues closed when it
   * returns; the holder is ended too unless keepHolder (then the next weftd resumes from it).
   */
  closeNow(keepHolder: boolean): void;
}

/** Ends every holder of `device` in this network namespace; returns how many. */
export function endHolders(device: string): number {
  const hs = findHolders(device);
  for (const h of hs) endHolder(h);
  return hs.length;
}

export function resumeUdp(ctx: ResumeContext): ResumeResult {
  const f = ctx.flags as unknown as UdpFlagValues;
  const path = statePath(ctx.stateDir, f.tunDevice);
  let st: UdpState | undefined;
  try {
    st = readUdpState(path);
  } catch (e) {
    return { skipped: `saved state unusable: ${(e as Error).message}` };
  }
  if (!st) return {};
  if (st.engine !== 'native' || (f.udpEngine !== undefined && f.udpEngine !== 'native')) return { skipped: 'only the native engine resumes' };
  if (f.udpOffload !== undefined && f.udpOffload !== st.vnetHdr) return { skipped: `--udp-offload=${f.udpOffload} differs from the saved state` };
  const link = ctx.nl.linkByName(st.device);
  if (!link) return { skipped: `TUN device ${st.device} is gone` };
  const diff = tunMismatch(link, { vnetHdr: st.vnetHdr });
  if (diff.length) return { skipped: `TUN device ${st.device} differs: ${diff.join('; ')}` };

  let dev: TunDevice | undefined;
  let udpFds: number[] | undefined;
  let txFds: number[] | undefined;
  let old: Holder | undefined;
  let via = 'the persistent device';
  const holders = findHolders(st.device);
  if (holders.length === 1) {
    old = holders[0]!;
    try {
      const taken = takeFromHolder(old, { bindIp: st.bindIp, port: st.port });
      const offloads = st.vnetHdr ? native().tun.enableOffload(taken.tunFds[0]!) : 0;
      dev = { name: st.device, index: link.index, fds: taken.tunFds, offloads, adopted: true };
      udpFds = taken.udpFds;
      // An older weftd's holder has none (its forwarder sent from the receive sockets): then made anew.
      if (taken.txFds.length === udpFds.length - 1) txFds = taken.txFds;
      else for (const fd of taken.txFds) native().close(fd);
      via = holderName(old);
    } catch {
      dev = undefined;  // attached by name below, once the holder is gone
    }
  }
  if (!dev) {
    try {
      for (const h of holders) endHolder(h);
      old = undefined;
      const queues = (ctx.nl.linkByName(st.device)?.tun?.numQueues ?? 0);
      if (queues > 0) return { skipped: `TUN device ${st.device} is held by another process (${queues} queues open)` };
      const workers = f.udpWorkers ?? defaultUdpWorkers();
      dev = openTun(ctx.nl, nullLogger, { name: st.device, queues: workers, vnetHdr: st.vnetHdr, mtu: link.mtu });
    } catch (e) {
      return { skipped: `attaching ${st.device}: ${(e as Error).message}` };
    }
  }
  let engine: NativeEngine;
  let holder: Holder;
  try {
    const own = Prefix.parse(st.ownSubnet);
    const own6 = st.ownSubnet6 ? Prefix.parse(st.ownSubnet6) : undefined;
    engine = NativeEngine.start({
      tunFds: dev.fds,
      ...(udpFds ? { udpFds } : {}),
      ...(txFds ? { txFds } : {}),
      tunOffloads: dev.offloads,
      bindIp: st.bindIp,
      port: st.port,
      ownIp: own.address(0),
      ownSubnets: [{ net: Number(own.ip), prefixLen: own.prefixLen }],
      ...(own6 ? { ownIp6: own6.address(0), ownSubnets6: [{ net6: own6.ip, prefixLen: own6.prefixLen }] } : {}),
    }, new ForwardingTable(st.routes));
  } catch (e) {
    closeTun(dev);
    return { skipped: `starting the forwarder: ${(e as Error).message}` };
  }
  try {
    // The new holder first, then the old one goes: the files are never without a holder.
    holder = spawnHolder(st.device, dev.fds, engine.udpFds(), engine.txFds());
    // systemd's store was replaced in place by spawnHolder: it is the new holder.
    if (old && !(old.store && old.store === holder.store)) endHolder(old);
  } catch (e) {
    engine.stopNow();
    closeTun(dev);
    return { skipped: `the fd holder: ${(e as Error).message}` };
  }
  return { resumed: resumedUdp(path, st, dev, engine, holder, via) };
}

function resumedUdp(path: string, state: UdpState, dev: TunDevice, engine: NativeEngine, holder: Holder, via: string): ResumedUdp {
  let stopped = false;
  const closeNow = (keepHolder: boolean) => {
    if (stopped) return;
    stopped = true;
    engine.stopNow();
    closeTun(dev);
    if (!keepHolder) endHolder(holder);
  };
  return {
    type: 'udp',
    state,
    dev,
    engine,
    holder,
    summary: { device: state.device, via, peers: state.routes.length, subnet: state.ownSubnet, workers: dev.fds.length, savedAt: state.savedAt },
    closeNow,
    close: async () => closeNow(true),
    async discard(nl: NetlinkHandle) {
      closeNow(false);
      removeTun(nl, state.device);
      removeUdpState(path);
    },
  };
}

/** weftd --cleanup: the fd holder, the persistent TUN (with its address and routes) and the saved state go. */
export function cleanupUdp(ctx: ResumeContext): string[] {
  const f = ctx.flags as unknown as UdpFlagValues;
  const done: string[] = [];
  const ended = endHolders(f.tunDevice);
  if (ended) done.push(`ended the fd holder of ${f.tunDevice}`);
  const held = ctx.nl.linkByName(f.tunDevice)?.tun?.numQueues ?? 0;
  if (held > 0) throw new Error(`TUN device ${f.tunDevice} is in use (${held} queues open): stop weftd first`);
  if (removeTun(ctx.nl, f.tunDevice)) done.push(`deleted TUN device ${f.tunDevice}`);
  const path = statePath(ctx.stateDir, f.tunDevice);
  if (removeUdpState(path)) done.push(`removed ${path}`);
  return done;
}
