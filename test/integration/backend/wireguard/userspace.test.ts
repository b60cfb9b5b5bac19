// The wireguard backend on wireguard-go (what this machine's kernel, without WireGuard, gets).
import { test, wireguardSuite } from './suite.js';

wireguardSuite('userspace');
test.run();
