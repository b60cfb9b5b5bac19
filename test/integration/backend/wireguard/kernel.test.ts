// The wireguard backend on the kernel's WireGuard (generic netlink), where the
// kernel has it; elsewhere every test is reported as skipped, with the reason.
import { kernelWireguardSupport } from '../../../../lab/wireguard.js';
import { test, wireguardSuite } from './suite.js';

const k = await kernelWireguardSupport();
if (k.ok) {
  wireguardSuite('kernel');
} else {
  console.log(`  skipped: this kernel has no WireGuard (${k.why}); the kernel provider's encodings are unit-tested in test/unit/netlink/wireguard.test.ts`);
  test.skip(`[kernel] the wireguard suite on the kernel's WireGuard (this kernel has none: ${k.why})`, () => {});
}
test.run();
