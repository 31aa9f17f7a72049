import type {
  Accepted,
  AnalyticsRange,
  AnalyticsReport,
  ApiErrorBody,
  BulkRedriveCount,
  BulkRedriveResult,
  ConversationPage,
  ConversationSummary,
  ConversationStatus,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPage,
  Erased,
  ImportAccepted,
  ImportJob,
  InboxPage,
  InboxView,
  LoginResponse,
  Operator,
  OperationEdit,
  Published,
  Redriven,
  RegressAccepted,
  RegressRequest,
  RegressRun,
  Replay,
} from './types';

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
  /** A 429's `retry_after_ms`, when the server sends one. */
  readonly retryAfterMs: number | null;

  constructor(status: number, code: string, message: string, retryAfterMs: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
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

  const body: unknown = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (isErrorBody(body)) {
      const retryAfter = body.error.retry_after_ms;
      throw new ApiError(
        response.status,
        body.error.code,
        body.error.message,
        typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? retryAfter : null,
      );
    }
    throw new ApiError(response.status, 'http_error', `The server answered ${response.status}.`);
  }
  return body as T;
}

/** `?a=1&b=x` of the parameters that have a value ('' and null are left out). */
function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** One page of a cursor-paged list. */
export interface PageRequest {
  limit?: number;
  cursor?: string | null;
}

/** The conversations, newest first; with `q`, a search (best match first, each with a snippet). */
export function listConversations(
  params: PageRequest & { status?: ConversationStatus | ''; q?: string } = {},
): Promise<ConversationPage> {
  return apiFetch<ConversationPage>(
    `/conversations${query({ limit: params.limit ?? 20, cursor: params.cursor, status: params.status, q: params.q })}`,
  );
}

export function getReplay(threadId: string): Promise<Replay> {
  return apiFetch<Replay>(`/conversations/${encodeURIComponent(threadId)}/replay`);
}

export function getAnalytics(range: AnalyticsRange): Promise<AnalyticsReport> {
  return apiFetch<AnalyticsReport>(`/analytics${query({ range })}`);
}

export function listDeadLetters(params: PageRequest & DeadLetterFilter = {}): Promise<DeadLetterPage> {
  const { limit, cursor, category, thread_id, since, until } = params;
  return apiFetch<DeadLetterPage>(`/dead-letters${query({ limit, cursor, category, thread_id, since, until })}`);
}

/** `id` as typed in the address is passed on as is: the server answers `invalid_id` for a bad one. */
export function getDeadLetter(id: number | string): Promise<DeadLetter> {
  return apiFetch<DeadLetter>(`/dead-letters/${encodeURIComponent(String(id))}`);
}

/** Sends the dead letter through the workers once more (it is deleted once that is stored). */
export function redriveDeadLetter(id: number): Promise<Redriven> {
  return apiFetch<Redriven>(`/dead-letters/${id}/redrive`, { method: 'POST' });
}

/** Discards the dead letter (204, no body). */
export async function discardDeadLetter(id: number): Promise<void> {
  await apiFetch<unknown>(`/dead-letters/${id}`, { method: 'DELETE' });
}

/** The filter as the bulk redrive's body takes it: only the filters that are set (it refuses others). */
function filterBody({ category, thread_id, since, until }: DeadLetterFilter): Record<string, string> {
  return Object.fromEntries(
    Object.entries({ category, thread_id, since, until }).filter((entry): entry is [string, string] => Boolean(entry[1])),
  );
}

function postJson<T>(path: string, body: unknown): Promise<T> {
  return apiFetch<T>(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

/** Step one of a bulk redrive: how many dead letters match the filter now (nothing changes). */
export function countRedrivable(filter: DeadLetterFilter): Promise<BulkRedriveCount> {
  return postJson<BulkRedriveCount>('/dead-letters/redrive', { ...filterBody(filter), dry_run: true });
}

/** Step two: redrive them, if `expectedCount` still match (else 409 `count_changed`, nothing done). */
export function redriveMatching(filter: DeadLetterFilter, expectedCount: number): Promise<BulkRedriveResult> {
  return postJson<BulkRedriveResult>('/dead-letters/redrive', { ...filterBody(filter), expected_count: expectedCount });
}

// ---- OpenAPI imports ----

/** Starts a regress run of a changed agents config (admin): 202 with the run's id. */
export function startRegress(request: RegressRequest): Promise<RegressAccepted> {
  return postJson<RegressAccepted>('/regress', request);
}

/** A regress run: `running` (with its progress), `done` (summary, changed turns) or `failed`. */
export function getRegress(id: string): Promise<RegressRun> {
  return apiFetch<RegressRun>(`/regress/${encodeURIComponent(id)}`);
}

/** Starts an import of the document text (JSON or YAML): 202 with the job's id. */
export function importDocument(text: string): Promise<ImportAccepted> {
  return apiFetch<ImportAccepted>('/openapi/imports', {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: text,
  });
}

/** Starts an import of the document at `url` (fetched by the server through its SSRF guard). */
export function importUrl(url: string): Promise<ImportAccepted> {
  return postJson<ImportAccepted>('/openapi/imports', { url });
}

export function getImport(id: string): Promise<ImportJob> {
  return apiFetch<ImportJob>(`/openapi/imports/${encodeURIComponent(id)}`);
}

/** Reviews one operation; answers with the whole import. */
export function editOperation(id: string, operationId: string, edit: OperationEdit): Promise<ImportJob> {
  return apiFetch<ImportJob>(
    `/openapi/imports/${encodeURIComponent(id)}/operations/${encodeURIComponent(operationId)}`,
    { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(edit) },
  );
}

/** Publishes the enabled, reviewed operations as the agents' tools. The answer's shape is read loosely. */
export function publishImport(id: string): Promise<Published> {
  return apiFetch<Published>(`/openapi/imports/${encodeURIComponent(id)}/publish`, { method: 'POST' });
}

// ---- Operators and the desk ----

/** Signs in with email and password; the server sets the session cookie the app then relies on. */
export function login(email: string, password: string): Promise<LoginResponse> {
  return postJson<LoginResponse>('/auth/login', { email, password });
}

/** Ends the session (204): the cookie's token stops working at once. */
export async function logout(): Promise<void> {
  await apiFetch<unknown>('/auth/logout', { method: 'POST' });
}

export function getMe(): Promise<Operator> {
  return apiFetch<Operator>('/me');
}

export function getInbox(view: InboxView): Promise<InboxPage> {
  return apiFetch<InboxPage>(`/inbox${query({ view })}`);
}

export function getConversation(threadId: string): Promise<ConversationSummary> {
  return apiFetch<ConversationSummary>(`/conversations/${encodeURIComponent(threadId)}`);
}

function conversationCommand<T>(threadId: string, command: string, body: unknown = {}): Promise<T> {
  return postJson<T>(`/conversations/${encodeURIComponent(threadId)}/${command}`, body);
}

/** Takes the conversation (for the signed-in operator): 409 `already_assigned` when someone holds it. */
export function assignConversation(threadId: string): Promise<Accepted> {
  return conversationCommand<Accepted>(threadId, 'assign');
}

/** The holder's reply to the customer; resend with the same `clientMsgId` after a network error. */
export function sendOperatorReply(threadId: string, text: string, clientMsgId: string): Promise<Accepted> {
  return conversationCommand<Accepted>(threadId, 'messages', { text, client_msg_id: clientMsgId });
}

/** An internal note: operators see it, the customer never does. */
export function addNote(threadId: string, text: string): Promise<unknown> {
  return conversationCommand<unknown>(threadId, 'notes', { text });
}

/** Hands the conversation back to the agents (the bot). */
export function releaseConversation(threadId: string): Promise<unknown> {
  return conversationCommand<unknown>(threadId, 'release');
}

export function resolveConversation(threadId: string): Promise<unknown> {
  return conversationCommand<unknown>(threadId, 'resolve');
}

/** Erases the conversation (admin): its events, dead letters and rows go; a tombstone without
 *  content (who, when) stays. Answered once the rows are gone. */
export function eraseConversation(threadId: string): Promise<Erased> {
  return apiFetch<Erased>(`/conversations/${encodeURIComponent(threadId)}`, { method: 'DELETE' });
}
