// Backends by type. The daemon looks the network config's Backend.Type up
// here (no switch anywhere); weftd's flag table takes each backend's flags.
import { ConfigError } from '../lib/errors.js';
import type { FlagDef } from '../lib/flags.js';
import type { BackendPlugin } from './backend.js';

export class BackendRegistry {
  private readonly byType = new Map<string, BackendPlugin>();

  constructor(plugins: ReadonlyArray<BackendPlugin> = []) {
    for (const p of plugins) this.register(p);
  }

  register<C>(p: BackendPlugin<C>): void {
    if (this.byType.has(p.type)) throw new TypeError(`backend ${JSON.stringify(p.type)} is registered twice`);
    const taken = new Set(this.flags().map((f) => f.name));
    for (const f of p.flags) if (taken.has(f.name)) throw new TypeError(`backend ${p.type}: flag --${f.name} is already defined`);
    this.byType.set(p.type, p as BackendPlugin);
  }

  types(): string[] {
    return [...this.byType.keys()];
  }

  /** Every registered backend's weftd flags, in registration order. */
  flags(): FlagDef[] {
    return [...this.byType.values()].flatMap((p) => p.flags);
  }

  /** Every registered plug-in, in registration order. */
  all(): BackendPlugin[] {
    return [...this.byType.values()];
  }

  get(type: string): BackendPlugin | undefined {
    return this.byType.get(type);
  }

  /** The plug-in for a network config's Backend and its parsed config; ConfigError for an unknown type or a bad field. */
  resolve(backend: { readonly type: string; readonly raw: Readonly<Record<string, unknown>> }): { plugin: BackendPlugin; config: unknown } {
    const plugin = this.byType.get(backend.type);
    if (!plugin) throw new ConfigError(`Backend.Type ${JSON.stringify(backend.type)} is not supported by this weftd (registered: ${this.types().join(', ')})`);
    return { plugin, config: plugin.parseConfig(backend.raw) };
  }
}
