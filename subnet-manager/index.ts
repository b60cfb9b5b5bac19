// Public API of the control plane.
export { type BackendConfig, type NetworkConfig, parseNetworkConfig } from './config.js';
export { type Lease, type LeaseAttrs, leaseKeySuffix, parseLeaseKeySuffix, encodeLeaseAttrs, decodeLeaseAttrs } from './lease.js';
export { type LeaseEvent, type LeaseBatch, type RawKV, LeaseTable, diffLeaseMaps, leaseFromKV } from './lease-table.js';
export { type SubnetSpace, subnetCount, subnetAt, isAllocatable, isFree, freeSubnetIndexes, chooseFreeSubnet } from './allocate.js';
export { ConfigError, ConfigMissingError, LeaseError, OutOfSubnetsError, EtcdUnavailableError, EtcdTlsError, EtcdAuthError, AbortedError } from './errors.js';
export { type SubnetManagerOptions, type AcquireRequest, SubnetManager, AcquireConflictError } from './manager.js';
export { type ManagerStats } from './watch.js';
export { Registry, type SubnetEvent } from './registry.js';
