// Gives a synchronous in-memory kernel (a test fake with routeReplace,
// neighReplace, fdbReplace, ... and the list calls) the asynchronous netlink
// calls backends use: batch() decodes each encoded request with weft's own
// decoders and calls the fake's method for it (so the encoders are exercised
// too), the *Dump() calls return the lists. An exception thrown by the fake
// becomes that request's error.
import {
  AF_BRIDGE, decodeFdb, decodeNeigh, decodeRoute, KernelError, NLM_F_REPLACE, type Fdb, type Neigh, type Request, type Route,
  RTM_DELNEIGH, RTM_DELROUTE, RTM_NEWNEIGH, RTM_NEWROUTE,
} from '../../../netlink/index.js';

export interface SyncKernel {
  routeList?(f?: { index?: number; family?: 4 | 6 }): Route[];
  routeReplace?(r: { dst: string; gateway?: string; index?: number; onlink?: boolean; protocol?: number }): void;
  routeDel?(r: { dst: string; gateway?: string; index?: number; protocol?: number }): void;
  neighList?(f?: { index?: number; family?: 4 | 6 }): Neigh[];
  neighReplace?(n: { index: number; ip: string; mac: string }): void;
  neighDel?(n: { index: number; ip: string }): void;
  fdbList?(f?: { index?: number }): Fdb[];
  fdbReplace?(f: { index: number; mac: string; dst?: string }): void;
  fdbDel?(f: { index: number; mac: string; dst?: string }): void;
}

export interface AsyncKernel {
  batch(reqs: readonly Request[]): Promise<(KernelError | undefined)[]>;
  routeDump(f?: { index?: number; family?: 4 | 6; table?: number }): Promise<Route[]>;
  neighDump(f?: { index?: number; family?: 4 | 6 }): Promise<Neigh[]>;
  fdbDump(f?: { index?: number }): Promise<Fdb[]>;
}

const msg = (r: Request) => ({ type: r.type, flags: r.flags, seq: 0, pid: 0, data: r.body });

/** Applies one encoded request to the fake. */
export function applyRequest(k: SyncKernel, r: Request): void {
  switch (r.type) {
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const x = decodeRoute(msg(r))!;
      const spec = { dst: x.dst, ...(x.gateway ? { gateway: x.gateway } : {}), ...(x.index !== undefined ? { index: x.index } : {}), ...(x.onlink ? { onlink: true } : {}), protocol: x.protocol };
      if (r.type === RTM_DELROUTE) k.routeDel!(spec);
      else if (r.flags & NLM_F_REPLACE) k.routeReplace!(spec);
      else throw new Error(`fake kernel: route add is not modelled (${r.op})`);
      return;
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      if (r.body[0] === AF_BRIDGE) {
        const f = decodeFdb(msg(r))!;
        const spec = { index: f.index, mac: f.mac, ...(f.dst ? { dst: f.dst } : {}) };
        if (r.type === RTM_DELNEIGH) k.fdbDel!(spec);
        else k.fdbReplace!(spec);
      } else {
        const n = decodeNeigh(msg(r))!;
        if (r.type === RTM_DELNEIGH) k.neighDel!({ index: n.index, ip: n.ip });
        else k.neighReplace!({ index: n.index, ip: n.ip, mac: n.mac! });
      }
      return;
    }
    default:
      throw new Error(`fake kernel: request type ${r.type} is not modelled (${r.op})`);
  }
}

/** The asynchronous calls on top of a synchronous fake. */
export function asyncCalls(k: SyncKernel): AsyncKernel {
  return {
    async batch(reqs) {
      return reqs.map((r) => {
        try {
          applyRequest(k, r);
          return undefined;
        } catch (e) {
          if (e instanceof KernelError) return e;
          throw e;
        }
      });
    },
    async routeDump(f = {}) { return k.routeList!(f); },
    async neighDump(f = {}) { return k.neighList!(f); },
    async fdbDump(f = {}) { return k.fdbList!(f); },
  };
}
