// The part of raw-socket (no bundled types) that weft status uses.
declare module 'raw-socket' {
  import { EventEmitter } from 'node:events';
  export const Protocol: { readonly ICMP: number; readonly ICMPv6: number; readonly NONE: number };
  export const AddressFamily: { readonly IPv4: number; readonly IPv6: number };
  export interface RawSocket extends EventEmitter {
    send(buffer: Buffer, offset: number, length: number, address: string, beforeCallback: (() => void) | null, afterCallback: (error: Error | null, bytes: number) => void): this;
    close(): this;
    on(event: 'message', listener: (buffer: Buffer, source: string) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
  }
  export function createSocket(options: { protocol: number; addressFamily?: number; bufferSize?: number; generateChecksums?: boolean; checksumOffset?: number }): RawSocket;
  export function createChecksum(...buffers: Array<Buffer | { buffer: Buffer; offset: number; length: number }>): number;
  export function writeChecksum(buffer: Buffer, offset: number, checksum: number): Buffer;
  const raw: {
    Protocol: typeof Protocol;
    AddressFamily: typeof AddressFamily;
    createSocket: typeof createSocket;
    createChecksum: typeof createChecksum;
    writeChecksum: typeof writeChecksum;
  };
  export default raw;
}
