// systemd's notify protocol (sd_notify(3)), spoken by weftd itself:
// READY=1 once the node is fully programmed, STATUS= lines as it goes,
// WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 on shutdown. Without
// $NOTIFY_SOCKET every call is a no-op, so weftd runs the same outside systemd.
import { native } from '../native/index.js';
import type { Logger } from '../lib/log.js';

export type NotifySend = (socketPath: string, message: string) => void;

export class SystemdNotifier {
  private readonly socket?: string;
  private watchdog?: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    env: Readonly<Record<string, string | undefined>> = process.env,
    private readonly send: NotifySend = (p, m) => native().sdNotify(p, m),
  ) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    const usec = Number(env.WATCHDOG_USEC);
    const pidOk = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
    if (this.socket && Number.isFinite(usec) && usec > 0 && pidOk) {
      const everyMs = Math.max(50, Math.floor(usec / 2000));
      this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), everyMs);
      this.watchdog.unref();
      log.info('systemd watchdog enabled', { intervalMs: everyMs });
    }
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** Sends one message; a failure is logged with its errno (systemd may be restarting), never thrown. */
  notify(message: string): void {
    if (!this.socket) return;
    try {
      this.send(this.socket, message);
    } catch (e) {
      this.log.warn('systemd notify failed', { socket: this.socket, message, err: e });
    }
  }

  status(text: string): void {
    this.notify(`STATUS=${text.replace(/\n/g, ' ')}`);
  }

  ready(text: string): void {
    this.notify(`READY=1\nSTATUS=${text.replace(/\n/g, ' ')}`);
  }

  stopping(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.notify('STOPPING=1');
  }
}
