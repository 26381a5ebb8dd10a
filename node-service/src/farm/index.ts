export { BUCKETS, planBuckets, bucketsOf, bucketCounts, movedBuckets, handoverPlan, needsHandover } from './plan.ts';
export type { BucketPlan, PlanInput } from './plan.ts';
