// weft's rtnetlink library: wire format (wire.ts, constants.ts), object model
// (types.ts and one request/decoder module per object), and the namespace-bound
// NetlinkHandle / NetlinkMonitor that talk to the kernel.
export * from './constants.js';
export * from './errors.js';
export * from './wire.js';
export * from './types.js';
export * from './request.js';
export * from './link.js';
export * from './addr.js';
export * from './route.js';
export * from './nexthop.js';
export * from './neigh.js';
export * from './socket.js';
export { NetlinkHandle, type HandleOptions } from './handle.js';
export * from './transport.js';
export * from './genl.js';
export * from './wireguard.js';
export * from './monitor.js';
export * from './monitor-filter.js';
export * from './error-counts.js';
export * from './faults.js';
