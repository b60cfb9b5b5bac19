// Small MSS through udp with offloads, then a clean SIGTERM: see udp-mss-suite.ts.
import { test, udpMssSuite } from './mss-suite.js';

udpMssSuite({ asan: false, seconds: 2 });
test.run();
