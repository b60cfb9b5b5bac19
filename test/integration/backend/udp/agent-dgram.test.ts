// weftd's udp backend with the dgram engine: see udp-agent-suite.ts.
import { test, udpAgentSuite } from './agent-suite.js';

udpAgentSuite('dgram');
test.run();
