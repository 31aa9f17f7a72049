// Types for the external contract in shared/API.md (v1): WebSocket frames and the REST responses
// the web UI reads. Hand-written for now; check them against `GET /api/openapi.json` when it lands.

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

export type ServerFrame = SessionFrame | AckFrame | EventFrame | ErrorFrame | PongFrame;

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

// ---- REST ----

export interface ConversationSummary {
  thread_id: string;
  status: string;
  started_at: string;
  last_activity_at: string;
  message_count: number;
  turn_count: number;
  tool_call_count?: number;
  /** Agent of the latest reply, or null. */
  agent?: string | null;
  preview: string | null;
  resolved_at?: string | null;
  escalated_at?: string | null;
}

/** The `status` values `GET /api/conversations?status=` takes. */
export const CONVERSATION_STATUSES = ['open', 'waiting_confirmation', 'escalated', 'resolved', 'failed'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];

export type ConversationPage = Page<ConversationSummary>;

export interface ReplayStep {
  seq: number;
  occurred_at: string;
  kind: string;
  turn_id: string | null;
  event_id: string;
  content?: string;
  text?: string;
  [field: string]: unknown;
}

export interface Replay {
  thread_id: string;
  steps: ReplayStep[];
}

/** Any `{"items":[…],"next_cursor":…}` answer. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

// ---- Analytics (`GET /api/analytics`, docs/rest.md) ----

export const ANALYTICS_RANGES = ['24h', '7d', '30d'] as const;
export type AnalyticsRange = (typeof ANALYTICS_RANGES)[number];

/** Counts of a window with the rates and percentiles derived from them. */
export interface AnalyticsSummary {
  conversations: number;
  messages: number;
  turns: number;
  replies: number;
  resolutions: number;
  escalations: number;
  failures: number;
  tool_calls: number;
  tool_errors: number;
  /** `null` without conversations (or tool calls, for `tool_error_rate`). */
  resolution_rate: number | null;
  escalation_rate: number | null;
  tool_error_rate: number | null;
  /** Upper bound of the histogram bucket the percentile falls in; `null` without latencies. */
  reply_latency_p50_ms: number | null;
  reply_latency_p95_ms: number | null;
  reply_latency_mean_ms: number | null;
}

export interface AgentSummary extends AnalyticsSummary {
  agent: string;
}

export interface SeriesPoint extends AnalyticsSummary {
  /** Start of the bucket (RFC 3339). */
  start: string;
}

export interface AnalyticsReport {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  totals: AnalyticsSummary;
  agents: AgentSummary[];
  series: SeriesPoint[];
}

// ---- Dead letters (`/api/dead-letters`, docs/rest.md) ----

export const DEAD_LETTER_CATEGORIES = ['retryable', 'not_retryable', 'fatal'] as const;
export type DeadLetterCategory = (typeof DEAD_LETTER_CATEGORIES)[number];

export interface DeadLetter {
  id: number;
  thread_id: string | null;
  source_subject: string;
  source_seq: number;
  category: string;
  error: string;
  attempts: number;
  failed_at: string;
  /** The failed message's payload as JSON, or a JSON string of its text when it is not JSON. */
  original: unknown;
  headers: Record<string, string>;
}

export type DeadLetterPage = Page<DeadLetter>;

export interface DeadLetterFilter {
  category?: DeadLetterCategory | '';
  thread_id?: string;
  /** RFC 3339 */
  since?: string;
  until?: string;
}

/** Answer to `POST /api/dead-letters/{id}/redrive`. */
export interface Redriven {
  id: number;
  /** Sequence of the `message.redriven` event in the chat stream. */
  seq: number;
}

/** `POST /api/dead-letters/redrive` with `dry_run`: how many match now. */
export interface BulkRedriveCount {
  would_redrive: number;
}

/** `POST /api/dead-letters/redrive` with `expected_count`: what was done. */
export interface BulkRedriveResult {
  redriven: number;
  failed: Array<{ id: number; code: string; message: string }>;
}

/** Body of every non-2xx REST answer. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

// ---- OpenAPI imports (docs/openapi-import.md; projections/src/http/imports.rs) ----

export const OPERATION_CLASSES = ['read', 'write', 'destructive'] as const;
export type OperationClass = (typeof OPERATION_CLASSES)[number];

export type ImportStatus = 'pending' | 'ready' | 'failed';

/** Answer to `POST /api/openapi/imports` (202). */
export interface ImportAccepted {
  id: string;
  status: ImportStatus;
}

/** One operation of an import, under review. */
export interface ImportOperation {
  operation_id: string;
  /** The id was made from method and path (the document had none). */
  generated_id: boolean;
  method: string;
  path: string;
  summary: string | null;
  description: string | null;
  tags: string[];
  parameters: unknown;
  request_body: unknown;
  servers: string[];
  /** The reviewed class (starts as the suggested one). */
  class: OperationClass;
  suggested_class: OperationClass;
  /** Why it got its suggested class. */
  reasons: string[];
  agent: string | null;
  suggested_agent: string | null;
  agent_reason: string | null;
  enabled: boolean;
}

/** `GET /api/openapi/imports/{id}` (and the answer to a PATCH of one of its operations). */
export interface ImportJob {
  id: string;
  status: ImportStatus;
  url: string | null;
  version: string | null;
  title: string | null;
  notes: string[];
  error: { code: string; message: string } | null;
  created_at: string;
  finished_at: string | null;
  operations: ImportOperation[];
}

/** The body of `PATCH /api/openapi/imports/{id}/operations/{operation_id}`: any of the three. */
export interface OperationEdit {
  class?: OperationClass;
  agent?: string | null;
  enabled?: boolean;
}

/** The answer to `POST /api/openapi/imports/{id}/publish`. */
export interface Published {
  /** The version of the published tool set (its NATS KV revision). */
  version: number;
  /** How many operations became tools. */
  operations: number;
}
