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
export const WEFTD_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1'];
