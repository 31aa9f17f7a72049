import { defineConfig } from 'vitest/config';

// The browser tests (e2e/*.e2e.ts): headless Chromium against the real stack, which
// scripts/e2e.sh starts and names in E2E_BASE_URL. Not part of `npm test`, whose config
// (vite.config.ts) only takes src/**/*.test.ts(x).
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    // One stack, one test file at a time: they would only compete for two cores.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
