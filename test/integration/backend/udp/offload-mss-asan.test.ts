// The same with weftd on the ASan+UBSan addon (WEFT_NATIVE_ASAN=1): any report fails it.
import { test, udpMssSuite } from './mss-suite.js';

udpMssSuite({ asan: true, seconds: 2 });
test.run();
