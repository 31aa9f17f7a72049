import type { ApiErrorBody, ConversationPage, Replay } from './types';

const OPERATOR_TOKEN_KEY = 'smart-support.operator-token';

export function getOperatorToken(): string | null {
  try {
    return localStorage.getItem(OPERATOR_TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setOperatorToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(OPERATOR_TOKEN_KEY, token);
    else localStorage.removeItem(OPERATOR_TOKEN_KEY);
  } catch {
    // Storage may be disabled (private mode); the token then lasts for this request only.
  }
}

/** A failed `/api` call: the HTTP status (0 when the server was not reached) and the server's words. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

function isErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const error = (value as { error: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** The one fetch wrapper: JSON in and out, the operator token attached, errors as `ApiError`. */
export async function apiFetch<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  const token = getOperatorToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);

  let response: Response;
  try {
    response = await fetch(`/api${path}`, { ...init, headers });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }

  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    if (isErrorBody(body)) throw new ApiError(response.status, body.error.code, body.error.message);
    throw new ApiError(response.status, 'http_error', `The server answered ${response.status}.`);
  }
  return body as T;
}

export function listConversations(params: { limit?: number; cursor?: string | null } = {}): Promise<ConversationPage> {
  const query = new URLSearchParams();
  query.set('limit', String(params.limit ?? 20));
  if (params.cursor) query.set('cursor', params.cursor);
  return apiFetch<ConversationPage>(`/conversations?${query.toString()}`);
}

export function getReplay(threadId: string): Promise<Replay> {
  return apiFetch<Replay>(`/conversations/${encodeURIComponent(threadId)}/replay`);
}
