// control-plane.svg: the scale run's peer routes per host over time (from the
// first put; each comes after the peer's neighbour and FDB entries), one line
// per host, the number of leases as a dashed line.
// Plain SVG, no dependencies, like throughput.svg.
import type { ControlPlaneResult } from './control-plane.js';

const W = 720;
const H = 360;
const PAD = { left: 70, right: 20, top: 40, bottom: 50 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A step that gives about `n` ticks over [0, max]: 1, 2 or 5 times a power of ten. */
function tickStep(max: number, n = 5): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

export function controlPlaneSvg(r: Pick<ControlPlaneResult, 'series' | 'leases' | 'convergeSeconds' | 'hosts'>): string {
  const tMax = Math.max(0.1, ...r.series.map((s) => s.t));
  const yMax = Math.max(1, r.leases);
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (t / tMax) * pw;
  const y = (v: number) => PAD.top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(`${r.leases} leases put at once: peer routes per host (each after its neighbour and FDB entry)`)}</text>`);
  const ys = tickStep(yMax);
  for (let v = 0; v <= yMax; v += ys) {
    out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  const xs = tickStep(tMax);
  for (let t = 0; t <= tMax + 1e-9; t += xs) {
    out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${PAD.top}" y2="${PAD.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${PAD.top + ph + 16}" text-anchor="middle">${Number(t.toFixed(3))}</text>`);
  }
  out.push(`<text x="${PAD.left + pw / 2}" y="${H - 12}" text-anchor="middle">seconds since the first put</text>`);
  out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(yMax)}" y2="${y(yMax)}" stroke="#555" stroke-dasharray="6 4"/>`);
  out.push(`<rect x="${PAD.left}" y="${PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (let h = 0; h < r.hosts; h++) {
    const pts = r.series.filter((s) => s.routes[h] !== undefined).map((s) => `${x(s.t).toFixed(1)},${y(s.routes[h]!).toFixed(1)}`);
    const color = COLORS[h % COLORS.length]!;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    const c = r.convergeSeconds[h];
    const label = `h${h + 1}: ${c === undefined ? 'not all' : `all ${3 * r.leases} entries after ${c.toFixed(2)} s`}`;
    out.push(`<text x="${PAD.left + 10}" y="${PAD.top + 16 + 16 * h}" fill="${color}">${esc(label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
