// Fault injection for tests (a failpoint), read once from WEFT_FAULTS:
//   WEFT_FAULTS='neigh show=DUMP_INTRx3,route replace=ETIMEDOUTx2,tun open=EBUSYx1@1'
// Each rule fails <count> (default 1) kernel operations whose op starts with
// <prefix>, after letting the first <skip> (default 0) of them pass: with that
// errno, or, for DUMP_INTR, by flagging the dump as interrupted
// (NLM_F_DUMP_INTR) as the kernel does when the table changes underneath it.
// Unset (production) nothing is ever injected.
import { errnoNumber } from './errors.js';

interface Rule {
  readonly prefix: string;
  /** An errno name, or DUMP_INTR. */
  readonly fault: string;
  left: number;
  skip: number;
}

export class Faults {
  private constructor(private readonly rules: Rule[]) {}

  static readonly none = new Faults([]);

  /** Parses a WEFT_FAULTS value; throws naming the bad rule. */
  static parse(spec: string): Faults {
    const rules: Rule[] = [];
    for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([^=]+)=([A-Z_0-9]+?)(?:x(\d+))?(?:@(\d+))?$/.exec(part);
      if (!m || (m[2] !== 'DUMP_INTR' && errnoNumber(m[2]!) === 0)) {
        throw new TypeError(`WEFT_FAULTS: bad rule ${JSON.stringify(part)}; want "<op prefix>=<ERRNO or DUMP_INTR>[x<count>][@<skip>]", e.g. "route replace=ETIMEDOUTx2"`);
      }
      rules.push({ prefix: m[1]!.trim(), fault: m[2]!, left: m[3] === undefined ? 1 : Number(m[3]), skip: m[4] === undefined ? 0 : Number(m[4]) });
    }
    return new Faults(rules);
  }

  private static env: Faults | undefined;

  /** The process's faults from WEFT_FAULTS (parsed once). */
  static fromEnv(): Faults {
    Faults.env ??= process.env.WEFT_FAULTS ? Faults.parse(process.env.WEFT_FAULTS) : Faults.none;
    return Faults.env;
  }

  /** Whether any rule is set (else take() never injects: callers need not describe their operation). */
  get active(): boolean {
    return this.rules.length > 0;
  }

  /** The fault to inject into `op` now (consuming it), or undefined. */
  take(op: string): string | undefined {
    for (const r of this.rules) {
      if (r.left <= 0 || !op.startsWith(r.prefix)) continue;
      if (r.skip > 0) {
        r.skip--;
        continue;
      }
      r.left--;
      return r.fault;
    }
    return undefined;
  }
}
