// weftd's udp backend with the native engine: see udp-agent-suite.ts.
import { test, udpAgentSuite } from './agent-suite.js';

udpAgentSuite('native');
test.run();
