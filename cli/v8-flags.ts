/** @module
 * The V8 flags an O3 server process runs with (bin/o3.js's shebang carries them, and so do
 * the benchmark's children): what each one is for and what it was measured to buy. Data only.
 */

/**
 * At most 4 MiB per semi-space (V8's default on 64-bit is 16). Node's HTTP server hands a
 * request body to JavaScript as a fresh ArrayBuffer per piece (llhttp on_body -> Buffer::Copy),
 * so an `o3 local` on one event loop makes 4 MiB of them per 1 MiB RATIS/THREE PUT (the
 * gateway's and three datanodes'). They die young, but V8 counts them as external memory until
 * a scavenge sweeps them, and counts external memory grown since the last mark-compact
 * against the old generation's limit: with a 16 MiB new space the scavenges came too seldom,
 * the dead bodies reached that limit every 2-7 PUTs and each time started a full
 * mark-compact of a 16 MB heap. A smaller new space is scavenged every PUT or two, which
 * frees them in time. 2 MiB removed the rest on RATIS/THREE too but cost 4 KiB operations
 * 10-25% more CPU (more scavenges); 4 did not: bench/README.md "GC on the PUT path".
 */
export const SEMI_SPACE_MAX_MIB = 4

/** The flags, as `node` takes them on its command line (and in NODE_OPTIONS). */
export const SERVER_V8_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MAX_MIB}`]
