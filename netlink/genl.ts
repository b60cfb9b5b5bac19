// Generic netlink (linux/genetlink.h): the genlmsghdr after the nlmsghdr,
// nlctrl's family lookup by name (CTRL_CMD_GETFAMILY), and GenlHandle, a
// generic netlink socket bound to one network namespace. A family's own
// commands (WireGuard's: wireguard.ts) are Requests like rtnetlink's.
import { NLMSG_HDRLEN } from './constants.js';
import { isNotFound, NetlinkParseError } from './errors.js';
import type { Request } from './request.js';
import { type NetlinkSocket, openGenericSocket, resolveNetns } from './socket.js';
import { NetlinkConn } from './transport.js';
import { attrStr, Attrs, type NlMsg } from './wire.js';

// linux/genetlink.h
export const GENL_HDRLEN = 4;
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
/** The nlctrl version wg(8) and libmnl ask with. */
const CTRL_VERSION = 1;

/** struct genlmsghdr { u8 cmd; u8 version; u16 reserved; } */
export function encodeGenlHdr(cmd: number, version: number): Buffer {
  const b = Buffer.alloc(GENL_HDRLEN);
  b.writeUInt8(cmd, 0);
  b.writeUInt8(version, 1);
  return b;
}

/** A request to a generic netlink family: nlmsg type = the family's id, genlmsghdr, attributes. */
export function genlRequest(familyId: number, cmd: number, version: number, flags: number, attrs: readonly Buffer[], op: string): Request {
  return { type: familyId, flags, body: Buffer.concat([encodeGenlHdr(cmd, version), ...attrs]), op };
}

/** The genlmsghdr and attributes of a generic netlink message. */
export function splitGenl(m: NlMsg): { cmd: number; version: number; attrs: Attrs } {
  if (m.data.length < GENL_HDRLEN) throw new NetlinkParseError(`truncated genlmsghdr: ${m.data.length} bytes, need ${GENL_HDRLEN}`, NLMSG_HDRLEN);
  return { cmd: m.data.readUInt8(0), version: m.data.readUInt8(1), attrs: Attrs.parse(m.data.subarray(GENL_HDRLEN), NLMSG_HDRLEN + GENL_HDRLEN) };
}

// genl-ctrl-list NAME (nlctrl CTRL_CMD_GETFAMILY with CTRL_ATTR_FAMILY_NAME)
export function getFamilyRequest(name: string): Request {
  return genlRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION, 0, [attrStr(CTRL_ATTR_FAMILY_NAME, name)], `genl ctrl getfamily ${name}`);
}

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
}

/** nlctrl's answer to getFamilyRequest. */
export function decodeFamily(m: NlMsg): GenlFamily {
  const { attrs } = splitGenl(m);
  const id = attrs.u16(CTRL_ATTR_FAMILY_ID);
  if (id === undefined) throw new NetlinkParseError('nlctrl answer has no CTRL_ATTR_FAMILY_ID', NLMSG_HDRLEN + GENL_HDRLEN);
  return { id, name: attrs.str(CTRL_ATTR_FAMILY_NAME) ?? '', version: attrs.u32(CTRL_ATTR_VERSION) ?? 0 };
}

export interface GenlHandleOptions {
  /** Namespace path (/run/netns/h1) or bare name (h1). Default: the process's namespace. */
  netns?: string;
  /** How long to wait for the kernel's answer to one request. Default 5000 ms. */
  timeoutMs?: number;
}

export class GenlHandle {
  readonly netns: string | undefined;
  private readonly conn: NetlinkConn;
  private readonly families = new Map<string, GenlFamily>();

  static open(opts: GenlHandleOptions = {}): GenlHandle {
    const netns = opts.netns === undefined ? undefined : resolveNetns(opts.netns);
    return new GenlHandle(openGenericSocket(netns === undefined ? {} : { netns }), { ...opts, ...(netns ? { netns } : {}) });
  }

  /** Wraps an already open socket (tests pass a fake). The handle owns it from now on. */
  constructor(sock: NetlinkSocket, opts: GenlHandleOptions = {}) {
    this.conn = new NetlinkConn(sock, opts.timeoutMs ?? 5000);
    this.netns = opts.netns;
  }

  close(): void {
    this.conn.close();
  }

  /** The family registered under `name`, or undefined when this kernel has none (ENOENT); remembered once found. */
  family(name: string): GenlFamily | undefined {
    const known = this.families.get(name);
    if (known) return known;
    try {
      const m = this.conn.exec(getFamilyRequest(name)).find((x) => x.type === GENL_ID_CTRL);
      if (!m) return undefined;
      const f = decodeFamily(m);
      this.families.set(name, f);
      return f;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  exec(req: Request): NlMsg[] {
    return this.conn.exec(req);
  }

  dump(req: Request): NlMsg[] {
    return this.conn.dump(req);
  }
}
