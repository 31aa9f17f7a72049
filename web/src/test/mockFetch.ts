import { vi } from 'vitest';

export interface Reply {
  status?: number;
  /** Left out (e.g. for a 204): an answer without a body. */
  body?: unknown;
  /** The server is not reached: fetch rejects, as it does offline. */
  networkError?: boolean;
}

/** Stubs `fetch` with answers given in order; returns the mock to inspect the calls. */
export function mockFetch(...replies: Reply[]) {
  const queue = [...replies];
  const fetchMock = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => {
    const reply = queue.shift();
    if (!reply) throw new Error('unexpected fetch');
    if (reply.networkError) throw new TypeError('Failed to fetch');
    if (reply.body === undefined) return new Response(null, { status: reply.status ?? 204 });
    return new Response(JSON.stringify(reply.body), {
      status: reply.status ?? 200,
      headers: { 'Content-Type': 'application/json' },
    });
  });
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

export function requestedUrl(fetchMock: ReturnType<typeof mockFetch>, call: number): URL {
  const input = fetchMock.mock.calls[call]?.[0];
  return new URL(String(input), 'http://localhost');
}

export function requestHeaders(fetchMock: ReturnType<typeof mockFetch>, call: number): Headers {
  return new Headers(fetchMock.mock.calls[call]?.[1]?.headers);
}

export function requestMethod(fetchMock: ReturnType<typeof mockFetch>, call: number): string {
  return fetchMock.mock.calls[call]?.[1]?.method ?? 'GET';
}
