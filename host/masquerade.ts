// --ip-masq: NAT rules in weft's own chain, in the style of flannel's:
// overlay-to-overlay traffic is never masqueraded; overlay-to-outside is.
// Rewritten as a whole like every weft chain (./iptables.ts). A dual-stack
// network's IPv6 gets the same chain in ip6tables (multicast ff00::/8 instead
// of 224.0.0.0/4), as flannel's masqIP6Rules.
import { chainRestoreInput, ensureChain, removeChain, type Chain, type IptablesFamily } from './iptables.js';

export const MASQ_CHAIN = 'WEFT-POSTRTG';
const COMMENT = 'weft masq';

/** The rules of the chain, in order, for cluster network `network` and this host's `subnet`. */
export function masqRules(network: string, subnet: string, family: IptablesFamily = 4): string[][] {
  return [
    ['-s', network, '-d', network, '-j', 'RETURN'],
    ['!', '-s', network, '-d', subnet, '-j', 'RETURN'],
    ['-s', network, '!', '-d', family === 6 ? 'ff00::/8' : '224.0.0.0/4', '-j', 'MASQUERADE', '--random-fully'],
    ['!', '-s', network, '-d', network, '-j', 'MASQUERADE', '--random-fully'],
  ];
}

function masqChain(network: string, subnet: string, family: IptablesFamily): Chain {
  return { family, table: 'nat', name: MASQ_CHAIN, hook: 'POSTROUTING', position: 'first', comment: COMMENT, rules: masqRules(network, subnet, family) };
}

export function masqRestoreInput(network: string, subnet: string, family: IptablesFamily = 4): string {
  return chainRestoreInput(masqChain(network, subnet, family));
}

/** Installs (or rewrites) the chain and the POSTROUTING jump to it. Idempotent. */
export function ensureMasquerade(network: string, subnet: string, family: IptablesFamily = 4): Promise<void> {
  return ensureChain(masqChain(network, subnet, family));
}

/** Removes the jump and the chain (used when --ip-masq is turned off). Missing pieces are fine. */
export function removeMasquerade(family: IptablesFamily = 4): Promise<void> {
  return removeChain({ family, table: 'nat', name: MASQ_CHAIN, hook: 'POSTROUTING', comment: COMMENT });
}
