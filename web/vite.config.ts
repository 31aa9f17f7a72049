import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The Rust server serves `dist/` on the same origin as `/ws` and `/api`; in development the Vite
// server stands in for it and forwards those two paths to a locally running server
// (BACKEND_URL when the stack runs elsewhere, e.g. on another LISTEN_ADDR).
const backend = process.env.BACKEND_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: backend },
      '/ws': {
        target: backend,
        ws: true,
        // The server accepts a handshake whose Origin names the Host it was sent to (or one on
        // WS_ALLOWED_ORIGINS); the dev page lives on Vite's port, so present the backend's host
        // and origin instead (without changeOrigin the Host stayed Vite's and the server said 403).
        changeOrigin: true,
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
