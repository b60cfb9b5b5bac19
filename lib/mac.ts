// Link-layer (MAC) addresses: text <-> bytes, as iproute2 prints them.

const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/** "c6:d2:32:6f:8f:44" (or with '-'; one or two hex digits per byte) → 6 bytes. Throws TypeError quoting the input. */
export function parseMac(s: string): Buffer {
  const b = typeof s === 'string' && s.length >= 11 && s.length <= 17 ? Buffer.allocUnsafe(6) : undefined;
  if (b) {
    let i = 0;
    let k = 0;
    for (; k < 6; k++) {
      const d1 = hexDigit(s.charCodeAt(i++));
      if (d1 < 0) break;
      const d2 = i < s.length ? hexDigit(s.charCodeAt(i)) : -1;
      if (d2 >= 0) i++;
      b[k] = d2 >= 0 ? d1 * 16 + d2 : d1;
      if (k === 5) {
        if (i === s.length) return b;
        break;
      }
      const sep = s.charCodeAt(i++);
      if (sep !== 58 /* : */ && sep !== 45 /* - */) break;
    }
  }
  throw new TypeError(`invalid MAC address ${JSON.stringify(s)}`);
}

const HEX_BYTE = Array.from({ length: 256 }, (_, x) => x.toString(16).padStart(2, '0'));

/** Link-layer address bytes → lowercase colon-separated hex (one flat string: a dump of 10,000 FDB entries formats 10,000). */
export function formatMac(b: Uint8Array): string {
  if (b.length === 6) return [HEX_BYTE[b[0]!], HEX_BYTE[b[1]!], HEX_BYTE[b[2]!], HEX_BYTE[b[3]!], HEX_BYTE[b[4]!], HEX_BYTE[b[5]!]].join(':');
  const parts: string[] = [];
  for (const x of b) parts.push(HEX_BYTE[x]!);
  return parts.join(':');
}
