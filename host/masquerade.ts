// --ip-masq: NAT rules in weft's own chain, in the style of flannel's:
// overlay-to-overlay traffic is never masqueraded; overlay-to-outside is.
// Rewritten as a whole like every weft chain (./iptables.ts).
import { chainRestoreInput, ensureChain, removeChain, type Chain } from './iptables.js';

export const MASQ_CHAIN = 'WEFT-POSTRTG';
const COMMENT = 'weft masq';

/** The rules of the chain, in order, for cluster network `network` and this host's `subnet`. */
export function masqRules(network: string, subnet: string): string[][] {
  return [
    ['-s', network, '-d', network, '-j', 'RETURN'],
    ['!', '-s', network, '-d', subnet, '-j', 'RETURN'],
    ['-s', network, '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE', '--random-fully'],
    ['!', '-s', network, '-d', network, '-j', 'MASQUERADE', '--random-fully'],
  ];
}

function masqChain(network: string, subnet: string): Chain {
  return { family: 4, table: 'nat', name: MASQ_CHAIN, hook: 'POSTROUTING', position: 'first', comment: COMMENT, rules: masqRules(network, subnet) };
}

export function masqRestoreInput(network: string, subnet: string): string {
  return chainRestoreInput(masqChain(network, subnet));
}

/** Installs (or rewrites) the chain and the POSTROUTING jump to it. Idempotent. */
export function ensureMasquerade(network: string, subnet: string): Promise<void> {
  return ensureChain(masqChain(network, subnet));
}

/** Removes the jump and the chain (used when --ip-masq is turned off). Missing pieces are fine. */
export function removeMasquerade(): Promise<void> {
  return removeChain({ family: 4, table: 'nat', name: MASQ_CHAIN, hook: 'POSTROUTING', comment: COMMENT });
}
