// Types for the external contract in shared/API.md (v1): WebSocket frames and the REST responses
// the web UI reads. The WebSocket frames are written by hand (frames.test.ts checks them against
// every example of docs/websocket.md); the REST types are the OpenAPI document's, generated into
// schema.ts (scripts/web_api_types.sh; `make test` fails when it drifts), under the names the
// pages use.

import type { components } from './schema';

type Schemas = components['schemas'];

/**
 * An answer as the server sends it. The document marks a Rust `Option` field as optional, but
 * the server sends every field of these answers, `null` when empty; only where a field may be
 * left out (a search's `rank` and `snippet`) are the generated types used as they are.
 */
type Sent<T> = T extends (infer U)[]
  ? Sent<U>[]
  : T extends object
    ? { [K in keyof T]-?: Sent<Exclude<T[K], undefined>> }
    : T;

/** The stored event envelope; each kind adds its own fields beside these. */
export interface EventEnvelope {
  event_id: string;
  kind: string;
  thread_id: string;
  turn_id: string | null;
  occurred_at: string;
  /** `message.received` */
  content?: string;
  /** `agent.replied` */
  text?: string;
  client_msg_id?: string;
  [field: string]: unknown;
}

// ---- WebSocket: server → client ----

export interface SessionFrame {
  type: 'session';
  thread_id: string;
  token: string;
}

export interface AckFrame {
  type: 'ack';
  client_msg_id: string;
  seq: number;
}

export interface EventFrame {
  type: 'event';
  seq: number;
  event: EventEnvelope;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** Not promised by the contract; used when the server names the rejected message. */
  client_msg_id?: string;
}

export interface PongFrame {
  type: 'pong';
}

/** A piece of a reply while a model writes it: live only, never stored; `agent.replied` follows. */
export interface DeltaFrame {
  type: 'delta';
  turn_id: string;
  text: string;
}

export type ServerFrame = SessionFrame | AckFrame | EventFrame | ErrorFrame | PongFrame | DeltaFrame;

// ---- WebSocket: client → server ----

export interface MessageFrame {
  type: 'message';
  content: string;
  client_msg_id: string;
}

export interface PingFrame {
  type: 'ping';
}

export type ClientFrame = MessageFrame | PingFrame;

/** Longest message content the server accepts (characters). */
export const MAX_CONTENT_CHARS = 10000;

// ---- REST (generated: schema.ts) ----

/** A conversation; `assignee` when the server says who holds it (the desk view also reads it from the steps). */
export type ConversationSummary = Schemas['ConversationSummary'] & { assignee?: OperatorRef | null };
/** A list item: a summary, and in a search its `rank` and `snippet` (see pages/Conversations/Snippet). */
export type ConversationItem = Schemas['ConversationItem'];
export type ConversationPage = Schemas['ConversationPage'];
export type ConversationDetail = Schemas['ConversationDetail'];

/** The `status` values `GET /api/conversations?status=` takes. */
export const CONVERSATION_STATUSES = ['open', 'waiting_confirmation', 'escalated', 'assigned', 'resolved', 'failed'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];
/** Longest `q` of `GET /api/conversations` (characters). */
export const MAX_SEARCH_CHARS = 200;

export type ReplayStep = Schemas['ReplayStep'];
export type Replay = Schemas['Replay'];

/** Any `{"items":[…],"next_cursor":…}` answer. */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

// ---- Analytics (`GET /api/analytics`, docs/rest.md) ----

export const ANALYTICS_RANGES = ['24h', '7d', '30d'] as const;
export type AnalyticsRange = (typeof ANALYTICS_RANGES)[number];

/** Counts of a window with the rates and percentiles derived from them. */
export type AnalyticsSummary = Sent<Schemas['AnalyticsSummary']>;
export type AgentSummary = Sent<Schemas['AgentSummary']>;
export type SeriesPoint = Sent<Schemas['SeriesPoint']>;
export type AnalyticsReport = Sent<Schemas['AnalyticsReport']>;
/** The desk's numbers of a range: handoffs, the wait to the first human reply, per operator. */
export type DeskSummary = Schemas['DeskSummary'];

// ---- Dead letters (`/api/dead-letters`, docs/rest.md) ----

export const DEAD_LETTER_CATEGORIES = ['retryable', 'not_retryable', 'fatal'] as const;
export type DeadLetterCategory = (typeof DEAD_LETTER_CATEGORIES)[number];

export type DeadLetter = Schemas['DeadLetter'];
export type DeadLetterPage = Schemas['DeadLetterPage'];

export interface DeadLetterFilter {
  category?: DeadLetterCategory | '';
  thread_id?: string;
  /** RFC 3339 */
  since?: string;
  until?: string;
}

/** Answer to `POST /api/dead-letters/{id}/redrive`. */
export type Redriven = Schemas['Redriven'];
/** The answer to an erasure: the tombstone's `seq` and what was deleted. */
export type Erased = Schemas['ErasedAnswer'];

type BulkRedriveAnswer = Schemas['BulkRedriveAnswer'];
/** `POST /api/dead-letters/redrive` with `dry_run`: how many match now. */
export type BulkRedriveCount = Extract<BulkRedriveAnswer, { would_redrive: number }>;
/** `POST /api/dead-letters/redrive` with `expected_count`: what was done. */
export type BulkRedriveResult = Extract<BulkRedriveAnswer, { redriven: number }>;

/** Body of every non-2xx REST answer. */
export type ApiErrorBody = Schemas['ErrorBody'];

// ---- OpenAPI imports (docs/openapi-import.md; api/src/imports.rs) ----

export const OPERATION_CLASSES = ['read', 'write', 'destructive'] as const;
export type OperationClass = (typeof OPERATION_CLASSES)[number];

export type ImportStatus = 'pending' | 'ready' | 'failed';

/** Answer to `POST /api/openapi/imports` (202). */
export type ImportAccepted = Schemas['Accepted'];
/** One operation of an import, under review. */
export type ImportOperation = Schemas['OperationView'];
/** `GET /api/openapi/imports/{id}` (and the answer to a PATCH of one of its operations). */
export type ImportJob = Schemas['ImportView'];
/**
 * The body of `PATCH /api/openapi/imports/{id}/operations/{operation_id}`: any of the three.
 * Narrower than the document (which takes any class string and nulls, refusing them by name),
 * and checked against it below.
 */
export interface OperationEdit {
  class?: OperationClass;
  agent?: string | null;
  enabled?: boolean;
}

// ---- Regress: a changed agents config tried on the recorded turns (docs/regress.md; api/src/regress.rs) ----

/** The body of `POST /api/regress`. */
export type RegressRequest = Schemas['RegressRequest'];
/** Answer to `POST /api/regress` (202). */
export type RegressAccepted = Schemas['RegressAccepted'];
export type RegressStatus = Schemas['RegressStatus'];
/** `GET /api/regress/{id}`: the run, its progress, and once done its summary and changed turns. */
export type RegressRun = Schemas['RegressRun'];
export type RegressSummary = Schemas['RegressSummary'];
/** A turn the new config answers differently: the recorded and the replayed decision. */
export type RegressChangedTurn = Schemas['RegressChangedTurn'];
export type RegressDecision = Schemas['RegressDecision'];
export type RegressToolCall = Schemas['RegressToolCall'];

// Compile-time checks that the hand-written request bodies are ones the document takes.
type Takes<Document, Written extends Document> = Written;
export type CheckedBodies = [Takes<Schemas['OperationEdit'], OperationEdit>];

// ---- Operators and the desk (shared/API.md "Operators and the desk") ----

export type OperatorRole = 'agent' | 'admin';

/** `GET /api/me`, and the `operator` of a sign-in. */
export interface Operator {
  id: string;
  name: string;
  email: string;
  role: OperatorRole;
}

/** An operator as events and the inbox name one: never the email. */
export interface OperatorRef {
  id: string;
  name: string;
}

/** `POST /api/auth/login`: the token is also set as an HttpOnly cookie, which is what the app uses. */
export interface LoginResponse {
  token: string;
  operator: Operator;
}

export const INBOX_VIEWS = ['unassigned', 'mine', 'all'] as const;
export type InboxView = (typeof INBOX_VIEWS)[number];

export interface InboxItem {
  thread_id: string;
  title: string;
  status: 'escalated' | 'assigned';
  assignee: OperatorRef | null;
  waiting_since: string;
  assigned_at: string | null;
  last_event_at: string;
  escalation_reason: string | null;
}

/** `GET /api/inbox?view=…`: oldest waiting first, with the count of every view. */
export interface InboxPage {
  items: InboxItem[];
  counts: Record<InboxView, number>;
}

/** The `data` of one `GET /api/desk/events` message (its SSE `id` is the same `seq`). */
export interface DeskEvent {
  seq: number;
  event: EventEnvelope;
}

/** 202 of a desk command (assign, reply): the stream sequence of the event it stored. */
export interface Accepted {
  seq: number;
}

/** The answer to `POST /api/openapi/imports/{id}/publish`: the published tool set's version (its NATS KV
 * revision) and how many operations became tools. */
export type Published = Schemas['Published'];
