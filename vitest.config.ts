import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration and e2e suites start real daemons, namespaces and FUSE mounts: keep files sequential
    // on a 2-core machine so timings inside a test are not distorted by a neighbour suite.
    fileParallelism: false,
    pool: 'forks',
  },
});
