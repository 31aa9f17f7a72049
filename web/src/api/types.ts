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
  preview: string | null;
}

export interface ConversationPage {
  items: ConversationSummary[];
  next_cursor: string | null;
}

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

/** Body of every non-2xx REST answer. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}
