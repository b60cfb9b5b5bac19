// The underlay after start: its link going down and up, and its IPv4 address
// changing. Netlink notifications (links, IPv4 addresses) say when to look;
// looking reads the underlay interface itself (not the default route, which
// a link flap removes). A new address is reported to the daemon, which moves
// the backend and the lease to it; with an explicit --public-ip there is
// nothing to follow, so a vanished address is only warned about.
import type { Underlay } from '../host/underlay.js';
import type { Logger } from '../lib/log.js';
import {
  RT_SCOPE_UNIVERSE, RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, type NetlinkHandle, type Notification,
} from '../netlink/index.js';

export type UnderlayNetlink = Pick<NetlinkHandle, 'linkByIndex' | 'addrList'>;

export interface UnderlayMonitor {
  poll(timeoutMs?: number, maxDatagrams?: number, want?: (type: number) => boolean): Notification[];
}

const isLinkOrAddr = (t: number) => t === RTM_NEWADDR || t === RTM_DELADDR || t === RTM_NEWLINK || t === RTM_DELLINK;

export class UnderlayWatch {
  /** What was last warned about, so a condition is reported once, not every second. */
  private said = 'ok';
  private lookAgain = false;

  constructor(
    private readonly nl: UnderlayNetlink,
    private readonly monitor: UnderlayMonitor,
    private readonly log: Logger,
    private cur: Underlay,
    /** --public-ip, when given: the address is not ours to follow. */
    private readonly explicitIp?: string,
  ) {}

  get underlay(): Underlay {
    return this.cur;
  }

  /** Accepts a change the daemon has carried out. */
  moved(u: Underlay): void {
    this.cur = u;
  }

  private say(state: string, level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}): void {
    if (this.said === state) return;
    this.said = state;
    this.log[level](msg, { iface: this.cur.name, ...fields });
  }

  /**
   * Drains the notifications and, when one concerns the underlay (or a
   * previous look was inconclusive), looks at it. Returns the underlay with
   * its new IPv4 address when that changed; undefined otherwise.
   */
  check(): Underlay | undefined {
    const notes = this.monitor.poll(0, 4096, isLinkOrAddr);
    const index = this.cur.index;
    const relevant = notes.some((n) =>
      n.kind === 'overrun' || (n.kind === 'link' && n.link.index === index) || (n.kind === 'addr' && n.addr.index === index));
    if (!relevant && !this.lookAgain) return undefined;
    this.lookAgain = false;
    const link = this.nl.linkByIndex(index);
    if (!link) {
      this.lookAgain = true;
      this.say('gone', 'warn', 'the underlay interface vanished; peers cannot reach this host until it is back (restart weftd if it comes back under another index)');
      return undefined;
    }
    if (!link.up) {
      this.lookAgain = true;
      this.say('down', 'warn', 'the underlay link is down; peers cannot reach this host until it is up again');
      return undefined;
    }
    const addrs = this.nl.addrList({ index, family: 4 }).map((a) => a.address);
    if (this.explicitIp !== undefined) {
      if (addrs.includes(this.explicitIp) || this.nl.addrList({ family: 4 }).some((a) => a.address === this.explicitIp)) {
        this.say('ok', 'info', 'the underlay is back', { publicIp: this.explicitIp });
      } else {
        this.lookAgain = true;
        this.say('explicit-gone', 'warn', '--public-ip is no longer an address of this host; peers keep sending to it (not followed: it was given explicitly)', { publicIp: this.explicitIp });
      }
      return undefined;
    }
    if (addrs.includes(this.cur.v4!)) {
      this.say('ok', 'info', 'the underlay is back', { publicIp: this.cur.v4 });
      return undefined;
    }
    if (addrs.length === 0) {
      this.lookAgain = true;
      this.say('no-address', 'warn', 'the underlay has no IPv4 address; waiting for one', { was: this.cur.v4 });
      return undefined;
    }
    const v6 = this.nl.addrList({ index, family: 6 }).find((a) => a.scope === RT_SCOPE_UNIVERSE)?.address;
    this.said = 'ok';
    return Object.freeze({ index, name: link.name, mtu: link.mtu, v4: addrs[0]!, ...(v6 ? { v6 } : {}) });
  }
}
