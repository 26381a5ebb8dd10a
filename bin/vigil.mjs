#!/usr/bin/env node
// The `vigil` command: loads the TypeScript sources through tsx so an on-prem install needs no build step.
import { register } from 'tsx/esm/api';
register();
await import('../node-service/src/cli/main.ts');
