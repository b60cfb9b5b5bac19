// Errors of the control plane. Each has a stable `code` for callers to branch
// on and says whether retrying the same call later can succeed.
import { ConfigError, errorKind } from '../lib/errors.js';

/** The network config (from etcd or a file) is missing or invalid: lib's ConfigError. */
export { ConfigError };

/**
 * The network config key does not exist (yet). Retryable: like flanneld,
 * an agent started before the operator wrote the config waits for it.
 */
export class ConfigMissingError extends errorKind('ENOCONFIG', true) {}

/** A lease key or value cannot be parsed or is not acceptable. */
export class LeaseError extends errorKind('EBADLEASE', false) {}

/**
 * Every subnet between SubnetMin and SubnetMax is taken. Not retryable in the
 * sense of "try again now"; leases of dead hosts expire after their TTL.
 */
export class OutOfSubnetsError extends errorKind('ENOSUBNETS', false) {}

/** etcd could not be reached (all endpoints) or timed out. Transient. */
export class EtcdUnavailableError extends errorKind('EUNAVAILABLE', true) {}

/**
 * TLS to etcd failed: a certificate was rejected or could not be verified.
 * Not transient: retrying with the same files cannot succeed.
 */
export class EtcdTlsError extends errorKind('EETCDTLS', false) {}

/**
 * etcd refused our credentials or permissions (authentication enabled and
 * no, wrong or insufficient user). Not transient.
 */
export class EtcdAuthError extends errorKind('EETCDAUTH', false) {}

/** The manager was closed or the operation was aborted by its signal. */
export class AbortedError extends errorKind('EABORTED', false) {}
