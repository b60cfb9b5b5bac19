// Forwarding for the overlay through hosts whose FORWARD policy is DROP
// (Docker sets it when it turns on ip_forward): weft's chain WEFT-FWD, as
// flannel's FLANNEL-FWD, accepts everything from and to the cluster network;
// the jump to it is appended to FORWARD, after Docker's own rules, so Docker's
// isolation and DOCKER-USER still come first. Rewritten atomically like the
// masquerade chain (./iptables.ts); kept: keep() checks it and puts back what
// is missing, and its last result is what /readyz reports.
import type { Logger } from '../lib/log.js';
import { chainProblems, ensureChain, removeChain, runTool, type Chain, type IptablesFamily } from './iptables.js';

export const FORWARD_CHAIN = 'WEFT-FWD';
const COMMENT = 'weft forward';

export function forwardRules(network: string): string[][] {
  return [
    ['-s', network, '-j', 'ACCEPT'],
    ['-d', network, '-j', 'ACCEPT'],
  ];
}

export function forwardChain(network: string, family: IptablesFamily = 4): Chain {
  return { family, table: 'filter', name: FORWARD_CHAIN, hook: 'FORWARD', position: 'last', comment: COMMENT, rules: forwardRules(network) };
}

export interface ForwardRulesStatus {
  /** The rules were in place at the last check (or put back by it). */
  readonly ok: boolean;
  /** 'in place', 'repaired: <what was missing>', or the error. */
  readonly detail: string;
  /** Times keep() found something missing and put it back. */
  readonly repairs: number;
  readonly checkedAt: Date;
}

export class ForwardRules {
  private last: ForwardRulesStatus = { ok: false, detail: 'not installed yet', repairs: 0, checkedAt: new Date(0) };

  constructor(
    private readonly chains: readonly Chain[],
    private readonly log: Logger,
    private readonly run = runTool,
  ) {}

  /** One chain per overlay family (IPv4 today; an IPv6 network adds an ip6tables chain). */
  static forNetworks(networks: ReadonlyArray<{ cidr: string; family: IptablesFamily }>, log: Logger): ForwardRules {
    return new ForwardRules(networks.map((n) => forwardChain(n.cidr, n.family)), log);
  }

  status(): ForwardRulesStatus {
    return this.last;
  }

  /** Installs every chain; throws (startup fails, naming the flag that turns this off). */
  async install(): Promise<void> {
    try {
      for (const c of this.chains) await ensureChain(c, this.run);
    } catch (e) {
      this.last = { ...this.last, ok: false, detail: (e as Error).message, checkedAt: new Date() };
      throw new Error(`${(e as Error).message} (forward rules for the overlay; --iptables-forward-rules=false turns them off)`);
    }
    this.last = { ...this.last, ok: true, detail: 'in place', checkedAt: new Date() };
  }

  /** Checks every chain and rewrites what is not in place. Never throws: the outcome is in status(). */
  async keep(): Promise<ForwardRulesStatus> {
    const missing: string[] = [];
    try {
      for (const c of this.chains) {
        const problems = await chainProblems(c, this.run);
        if (!problems.length) continue;
        missing.push(...problems);
        await ensureChain(c, this.run);
      }
      if (missing.length) {
        this.log.warn('forward rules were not in place; put back', { missing });
        this.last = { ok: true, detail: `repaired: ${missing.join('; ')}`, repairs: this.last.repairs + 1, checkedAt: new Date() };
      } else {
        this.last = { ...this.last, ok: true, detail: 'in place', checkedAt: new Date() };
      }
    } catch (e) {
      this.log.error('forward rules cannot be put in place', { err: e, missing });
      this.last = { ...this.last, ok: false, detail: (e as Error).message, checkedAt: new Date() };
    }
    return this.last;
  }
}

/** Removes weft's forward chain and its jump (--iptables-forward-rules=false). Missing pieces are fine. */
export function removeForwardRules(family: IptablesFamily = 4): Promise<void> {
  return removeChain({ family, table: 'filter', name: FORWARD_CHAIN, hook: 'FORWARD', comment: COMMENT });
}
