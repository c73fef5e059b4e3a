/** @module
 * The V8 flags an O3 server process runs with (bin/o3.js's shebang carries them, and so do
 * the benchmark's children): what each one is for and what it was measured to buy. Data only.
 */

/**
 * At most 16 MiB per semi-space: what V8 picks by itself on a 64-bit host with a few GB of
 * memory (less on a small one), pinned so that neither a smaller host nor another V8 changes
 * it unmeasured. A request's objects live as long as its Raft rounds (milliseconds, 32 at a
 * time), so a small new space promotes them and the old generation collects them: with the
 * 4 MiB of 2026-12-02 to 12-06 a steady 4 KiB S3 PUT spent 116-140 us of main-thread GC
 * pauses per operation, with 16 53-69, and `o3 local` 830-980 against 700-830 us of CPU per
 * PUT (bench/README.md "GC on the PUT path, again"). 4 MiB had been chosen when one 1 MiB
 * RATIS/THREE PUT handed one isolate 4 MiB of dead HTTP body pieces (the gateway's and three
 * datanodes'), which V8 counts as external memory until a scavenge, so a large new space
 * let them start a full mark-compact every few PUTs. Since short-circuit writes a PUT leaves
 * only the gateway's own 1 MiB, and 200 sequential 1 MiB RATIS/THREE PUTs, ten 64 MiB PUTs
 * and ten 64 MiB GETs made no mark-compact with 16.
 */
export const SEMI_SPACE_MAX_MIB = 16

/** The flags, as `node` takes them on its command line (and in NODE_OPTIONS). */
export const SERVER_V8_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MAX_MIB}`]
