/**
 * The Node/V8 flags a gateway process is started with: the Dockerfile's CMD, the children of
 * `fleetgate gateway --processes N`, and the benchmarks' gateways. A gateway started without
 * them (by hand) says so in its banner.
 *
 * `--initial-old-space-size=128`: a floor of 128 MiB under V8's full-GC trigger while the live
 * heap is small. Why: V8 starts a full mark-compact when the old generation plus the ArrayBuffer
 * bytes allocated since the last one near a limit it sets at a small multiple of the live heap.
 * Every agent message passes through several ArrayBuffers on the main thread (the HTTP/2 DATA
 * chunk, the decompressed message, its copy into the produce task), about 25 MB/s at 100 agents
 * sending 20 records every 100 ms, while the live heap is ~16 MB: a full GC every 0.6–0.8 s
 * (`--trace-gc`: "Start (task)" at 16 of 40 MB), with concurrent marking the largest GC item in a
 * `perf record` of the paced run (15 % of the process's samples in GC). With the floor, one full
 * GC every ~5 s (external-memory pressure) on Node 20 and 24 (docs/capacity.md "Paced cost").
 * A heap whose live size is past 128 MiB (thousands of agents) is unaffected: V8's own limit
 * is larger. The cost is up to ~128 MiB of garbage held between full GCs.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** A flag's name: `--initial-old-space-size=128` → `--initial-old-space-size`. */
function flagName(flag: string): string {
  const eq = flag.indexOf('=');
  return (eq < 0 ? flag : flag.slice(0, eq)).replaceAll('_', '-');
}

/** The gateway flags `execArgv` lacks (an operator's own value for a flag counts as set). */
export function missingGatewayNodeFlags(execArgv: readonly string[]): string[] {
  const present = new Set(execArgv.map(flagName));
  return GATEWAY_NODE_FLAGS.filter((f) => !present.has(flagName(f)));
}

/** `execArgv` plus the gateway flags it lacks: what a gateway child process is forked with. */
export function withGatewayNodeFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...missingGatewayNodeFlags(execArgv)];
}
