/**
 * Farm module, the parts below the daemon: who owns which bucket (pure) and the kernel filter.
 *
 * Packet path (docs/ARCHITECTURE.md "Virtual IP"): every node holds the VIP; clients resolve it to a
 * virtual MAC (02:76:67:<last 3 bytes of the VIP>) that no node ever uses as a frame source, so the
 * switch floods those frames to every node; on each node an nftables netdev ingress rule computes
 * `jhash ip saddr [. sport] mod 256` (fixed seed) and accepts the packet as its own (PACKET_HOST) only
 * when the bucket is one of its own. One node, the plan's `responder`, answers ARP for the VIP (its
 * replies are rewritten to carry the virtual MAC) and takes the VIP traffic that no rule balances.
 *
 * The daemon uses FarmEdge (port.ts, implements daemon/ports.ts FarmPort), which does exactly the
 * sequence below (grace 800 ms by default; a lone node whose VIP link is down serves nothing, and
 * after the link returns waits one heartbeat timeout for its peers before serving alone).
 * Buckets handed to another live node drain (FarmFilterOptions.drainMs, default 2 min): their
 * established TCP connections stay here, new ones go to the new owner; a TCP segment of a connection
 * a node does not know is dropped, never answered with a reset.
 *
 * How the daemon drives it (one FarmFilter per farm module):
 *
 *   const filter = new FarmFilter({ module, self: nodeName, log });
 *   at start:           await filter.remove();             // leftovers of a crash
 *   entering WAIT/UP:   await filter.install();            // VIP present, owns nothing yet
 *   membership change:  const next = planBuckets({ nodes: module.nodes, power: module.farm?.power ?? {}, alive });
 *                       if (prev && needsHandover(prev, next)) {          // a live node gives buckets away
 *                         await filter.apply(handoverPlan(prev, next));   // release at once ...
 *                         await sleep(grace);                             // ~2 heartbeat pulses
 *                       }                                                  // (re-plan if membership changed meanwhile)
 *                       await filter.apply(next); prev = next;
 *   (`alive` = the live UP nodes, self included when UP; in WAIT apply the plan without self, or do not
 *    install at all.)
 *   on stop:            await filter.remove();
 *   status():           what the kernel enforces now (metrics, `vigil state`).
 *
 * A node leaving never needs the handover (its buckets only go to survivors): failover is one
 * apply() right after detection. A node joining takes its buckets back only after the others have
 * released them, so two nodes never both answer a new connection.
 */
export { BUCKETS, planBuckets, planTransition, bucketsOf, bucketCounts, movedBuckets, handoverPlan, needsHandover, fnv1a } from './plan.ts';
export type { BucketPlan, PlanInput, Transition, TransitionInput } from './plan.ts';
export { FarmFilter } from './filter.ts';
export { FarmEdge } from './port.ts';
export type { FarmEdgeOptions } from './port.ts';
export type { Exec, FarmFilterOptions, FarmStatus } from './filter.ts';
export { farmSpec, renderInstall, renderApply, renderRemove, parseListing, bucketSet } from './nft.ts';
export type { FarmSpec, FarmVip, FarmRuleSpec, FilterState } from './nft.ts';
