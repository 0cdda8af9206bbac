import { setFlagsFromString } from 'node:v8'

/**
 * V8 garbage-collector settings for the tsray process, applied before anything else is loaded. They
 * are the process owner's choice, so the CLI makes it and the library does not (README "Performance").
 *
 * - A relay allocates a fresh off-heap Buffer per socket read (and, on the node:crypto path, per
 *   cipher output); each 64 MB of them starts incremental marking, which with tsray's small heap
 *   ends in a mark-compact almost every time. Without incremental marking, the external memory is
 *   reclaimed by scavenges and a full collection runs only when the old space fills. Measured again
 *   with the native cipher path (README "Performance"): without these flags CPU per GiB was 1.13-1.2×
 *   higher on the addon and 1.5-2.1× on node:crypto; RSS did not change.
 * - V8 doubles the young generation (up to 2 × 16 MB) while tunnels open; kept at its first size it
 *   costs a few more scavenges, and the RSS per idle tunnel at 1,000 tunnels falls by more than half.
 */
setFlagsFromString('--no-incremental-marking')
setFlagsFromString('--semi-space-growth-factor=1')
