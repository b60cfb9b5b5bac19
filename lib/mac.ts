// Link-layer (MAC) addresses: text <-> bytes, as iproute2 prints them.

/** "c6:d2:32:6f:8f:44" (or with '-') → 6 bytes. Throws TypeError quoting the input. */
export function parseMac(s: string): Buffer {
  const parts = typeof s === 'string' ? s.split(/[:-]/) : [];
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) throw new TypeError(`invalid MAC address ${JSON.stringify(s)}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

/** Link-layer address bytes → lowercase colon-separated hex. */
export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
