// Errors of the control plane. Each has a stable `code` for callers to branch
// on and says whether retrying the same call later can succeed.
import { ConfigError, WeftError } from '../lib/errors.js';

/** The network config (from etcd or a file) is missing or invalid: lib's ConfigError. */
export { ConfigError };

export abstract class SubnetManagerError extends WeftError {}

/**
 * The network config key does not exist (yet). Retryable: like flanneld,
 * an agent started before the operator wrote the config waits for it.
 */
export class ConfigMissingError extends SubnetManagerError {
  readonly code = 'ENOCONFIG';
  readonly retryable = true;
}

/** A lease key or value cannot be parsed or is not acceptable. */
export class LeaseError extends SubnetManagerError {
  readonly code = 'EBADLEASE';
  readonly retryable = false;
}

/**
 * Every subnet between SubnetMin and SubnetMax is taken. Not retryable in the
 * sense of "try again now"; leases of dead hosts expire after their TTL.
 */
export class OutOfSubnetsError extends SubnetManagerError {
  readonly code = 'ENOSUBNETS';
  readonly retryable = false;
}

/** etcd could not be reached (all endpoints) or timed out. Transient. */
export class EtcdUnavailableError extends SubnetManagerError {
  readonly code = 'EUNAVAILABLE';
  readonly retryable = true;
}

/**
 * TLS to etcd failed: a certificate was rejected or could not be verified.
 * Not transient: retrying with the same files cannot succeed.
 */
export class EtcdTlsError extends SubnetManagerError {
  readonly code = 'EETCDTLS';
  readonly retryable = false;
}

/**
 * etcd refused our credentials or permissions (authentication enabled and
 * no, wrong or insufficient user). Not transient.
 */
export class EtcdAuthError extends SubnetManagerError {
  readonly code = 'EETCDAUTH';
  readonly retryable = false;
}

/** The manager was closed or the operation was aborted by its signal. */
export class AbortedError extends SubnetManagerError {
  readonly code = 'EABORTED';
  readonly retryable = false;
}
