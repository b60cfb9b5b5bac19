// The backends this weftd is built with. A new backend is one folder under
// backend/ with a plugin.ts, and one entry here.
import { hostGwBackend } from './host-gw/plugin.js';
import { BackendRegistry } from './registry.js';
import { udpBackend } from './udp/plugin.js';
import { vxlanBackend } from './vxlan/plugin.js';
import { wireguardBackend } from './wireguard/plugin.js';

export const BACKENDS = new BackendRegistry([vxlanBackend, udpBackend, hostGwBackend, wireguardBackend]);
