#!/usr/bin/env node
// The `vigil` command: loads the TypeScript sources through tsx so an on-prem install needs no build step.
// The daemon's file work (fsyncs, state files, reads) shares libuv's thread pool, 4 threads by default:
// many modules taking over at once queued behind each other's fsyncs (`npm run soak -- --scale`: 64
// modules failed over in 34 s with 4 threads, 16 s with 64). Set before anything uses the pool.
process.env.UV_THREADPOOL_SIZE ??= '64';
const { register } = await import('tsx/esm/api');
register();
await import('../node-service/src/cli/main.ts');
