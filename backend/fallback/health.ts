// Each fallback peer's two paths as their probes see them, and the rule that
// picks one (pure: no sockets, no clock of its own; unit-tested).
//   a path is down after `downAfter` probes in a row went unanswered, up again
//   with the next answer;
//   vxlan -> udp when vxlan is down and udp answered its last probe;
//   udp -> vxlan when vxlan has answered every probe for `backAfterMs`
//   (hysteresis: a flaky VXLAN does not pull the peer back and forth), or at
//   once when udp is down too and vxlan answers;
//   both down: the peer stays where it is (reported unreachable on both).
// Both hosts of a pair run the same rule on their own probes, and a probe
// needs its path both ways, so they decide alike.
import type { PathProbeState } from '../peer-paths.js';
import type { ProbePath } from './packet.js';

export interface ProbeTuning {
  /** Mean time between two probes of one path to one peer (jittered by ±jitter). */
  readonly intervalMs: number;
  readonly jitter: number;
  /** A probe not answered within this long is lost. */
  readonly timeoutMs: number;
  /** This many lost in a row: the path is down. */
  readonly downAfter: number;
  /** On udp: vxlan must answer every probe this long before the peer moves back. */
  readonly backAfterMs: number;
}

/** 3 probes a second per path; down after 5 lost (about 2.5 s); back after 10 s of answers. */
export const DEFAULT_TUNING: ProbeTuning = Object.freeze({ intervalMs: 333, jitter: 0.2, timeoutMs: 1000, downAfter: 5, backAfterMs: 10_000 });

export class PathHealth {
  state: 'up' | 'down' | 'unknown' = 'unknown';
  /** Wall-clock ms of the last change of state. */
  since?: number;
  sent = 0;
  answered = 0;
  lost = 0;
  lastRttMs?: number;
  lostInARow = 0;
  /** When the current run of losses began (the first lost probe's send time). */
  failingSince?: number;
  /** When the current run of answers began (first answered after the last loss). */
  answeringSince?: number;

  constructor(private readonly downAfter: number) {}

  answer(sentAt: number, now: number, rttMs: number): void {
    this.answered++;
    this.lastRttMs = rttMs;
    this.lostInARow = 0;
    this.failingSince = undefined;
    this.answeringSince ??= sentAt;
    if (this.state !== 'up') {
      this.state = 'up';
      this.since = now;
    }
  }

  loss(sentAt: number, now: number): void {
    this.lost++;
    this.lostInARow++;
    this.answeringSince = undefined;
    this.failingSince ??= sentAt;
    if (this.lostInARow >= this.downAfter && this.state !== 'down') {
      this.state = 'down';
      this.since = now;
    }
  }

  /** Up and its last probe answered: a path to move to. */
  get healthy(): boolean {
    return this.state === 'up' && this.lostInARow === 0;
  }

  view(): PathProbeState {
    return {
      state: this.state,
      ...(this.since !== undefined ? { since: new Date(this.since) } : {}),
      sent: this.sent,
      answered: this.answered,
      lost: this.lost,
      ...(this.lastRttMs !== undefined ? { lastRttMs: this.lastRttMs } : {}),
    };
  }
}

export type Health = Readonly<Record<ProbePath, PathHealth>>;

export interface Decision {
  readonly path: ProbePath;
  readonly reason?: string;
}

/** HH:MM:SS of a wall-clock time (the machine's time zone). */
export function clock(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

function failing(h: PathHealth, path: ProbePath): string {
  return `${path} probes failing since ${clock(h.failingSince ?? h.since ?? 0)}`;
}

/** The path a peer on `cur` takes now, and why (undefined reason: vxlan, healthy). */
export function decide(cur: ProbePath, h: Health, now: number, t: ProbeTuning): Decision {
  const { vxlan, udp } = h;
  const bothDown = vxlan.state === 'down' && udp.state === 'down';
  const unreachable = () => `unreachable: ${failing(vxlan, 'vxlan')}, ${failing(udp, 'udp')}`;
  if (cur === 'vxlan') {
    if (vxlan.state === 'down' && udp.healthy) return { path: 'udp', reason: failing(vxlan, 'vxlan') };
    if (bothDown) return { path: 'vxlan', reason: unreachable() };
    if (vxlan.state === 'down') return { path: 'vxlan', reason: `${failing(vxlan, 'vxlan')}; udp not answering yet` };
    return { path: 'vxlan' };
  }
  if (vxlan.healthy && (udp.state === 'down' || now - (vxlan.answeringSince ?? now) >= t.backAfterMs)) return { path: 'vxlan' };
  if (bothDown) return { path: 'udp', reason: unreachable() };
  if (vxlan.healthy) return { path: 'udp', reason: `vxlan answering again since ${clock(vxlan.answeringSince!)} (back after ${t.backAfterMs / 1000} s of answers)` };
  return { path: 'udp', reason: failing(vxlan, 'vxlan') };
}
