import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The Rust server serves `dist/` on the same origin as `/ws` and `/api`; in development the Vite
// server stands in for it and forwards those two paths to a locally running server.
const backend = 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: backend },
      '/ws': {
        target: backend,
        ws: true,
        // The server checks the handshake's Origin against its allow-list, which names its own
        // origin; the dev page lives on Vite's port, so present the backend's origin instead.
        configure: (proxy) => {
          proxy.on('proxyReqWs', (proxyReq) => proxyReq.setHeader('origin', backend));
        },
      },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: { modules: { classNameStrategy: 'non-scoped' } },
  },
});
