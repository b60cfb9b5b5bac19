// The node flags weftd runs with: its shebang (cmd/weftd.ts, so /usr/local/bin/weftd and
// the systemd unit get them) and the lab's agents (lab/agent.ts) both use these.
//
// --v8-pool-size=1: one V8 worker thread instead of node's four, for V8's background work
// (optimizing compiles, concurrent marking, parallel scavenging). weftd's heap is about
// 100 MiB and its hot code is compiled once; what it needs is a main thread that answers on
// time. Three weftd on two CPUs (`weft bench --paths none`, three bursts, runs alternated):
// with 10,000 leases, a weftd's event-loop delay went above 50 ms in 6 of 45 bursts (5 runs)
// against 42 of 72 (8 runs) with four workers, and the first burst took a median 1.50 s
// against 1.44 s (its compiles queue on one thread); with 4000 leases, 1 of 27 against 6 of
// 27 and no slower. One weftd alone was no slower.
//
// --no-turbo-inlining: V8's optimizing compiler compiles each hot function on its own, without
// inlining its callees. Most of a weftd's first burst of leases is V8 compiling its per-lease
// code (a fixed cost, as large at 4000 leases as at 10,000); without inlining those compiles
// are smaller. Runs alternated in one window (`weft bench --paths none`, 3 weftd on 2 CPUs):
// 4000 leases, first burst median 0.68 s against 0.79 s (8 rounds each), each weftd's CPU
// 0.34-0.47 against 0.40-0.52 s, its event-loop max 33-51 against 35-63 ms; 10,000 leases,
// first burst median 1.27 s against 1.42 s (9 rounds), the deletion 1.02 against 1.11 s. The
// cost: warm code is a little slower where the CPUs are crowded (10,000 leases put again,
// median 1.03 against 0.94 s; at 4000 leases, and one weftd alone, no slower), and the dgram
// engine, JavaScript on the data path, takes ~6 % more CPU per GB.
export const WEFTD_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1', '--no-turbo-inlining'];
