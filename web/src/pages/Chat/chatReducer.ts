import { describeErrorCode, refusesResume, rejectsMessage } from '../../api/errorCodes';
import { chatStatusText, chatToolText, isQuietInChat, kindTone } from '../../api/eventKinds';
import { carriesCall, replyEnd } from '../../api/turnEvents';
import type { EventEnvelope, ServerFrame } from '../../api/types';

/**
 * The chat transcript as a pure function of the frames received and the messages typed, so that
 * ordering, de-duplication and resume can be tested without a socket.
 *
 * Rules:
 * - `event` frames arrive in stream order; one whose `seq` is not above `lastSeq` was already seen
 *   (a replay after reconnect may overlap) and is dropped. Only events advance `lastSeq`: an `ack`
 *   can overtake earlier events still on their way, and those must not be skipped.
 * - A tool call is one status line: its `tool.succeeded` / `tool.failed` updates the line of its
 *   `tool.called` (same turn and `call_id`) rather than adding another. A `read` call of version 2
 *   of the events has no `tool.called`: its result alone draws the line, with the permission it
 *   carries.
 * - An `operator.replied` is a reply from a person, with their name. A `turn.held` (the agents
 *   did not answer because a person has the conversation) ends the typing indicator and shows
 *   "a person will answer" once, not for every held message.
 * - A `confirmation.requested` leaves a question open (`confirmation`) until the next user message,
 *   so the page can offer Yes / No answers.
 * - Version 2 of the events ends a turn with its `agent.replied` (no `turn.completed` follows) and
 *   writes on it what version 1 wrote before it as events of their own: the write to confirm
 *   (`pending`, for `confirmation.requested`) and the hand-over to a person (`escalation`, for
 *   `conversation.escalated`). The reply draws the status line of that event, then itself, so a
 *   turn reads the same in either version.
 * - `delta` frames (a reply while a model writes it) grow a draft reply of their turn; the turn's
 *   `agent.replied` replaces the draft with the stored text, and pieces that come after it (they
 *   travel beside the stream and may be late) are dropped. A tool call or the end of the turn
 *   drops the draft too: it was not the reply.
 * - A typed message is shown at once as `sending`. It becomes `sent` when its ack or its own
 *   `message.received` echo arrives, whichever is first; the other one then finds it (by
 *   `client_msg_id` or by `seq`), so the message is never drawn twice.
 */

export type UserMessageStatus = 'sending' | 'sent' | 'failed';

export interface UserMessage {
  type: 'user';
  key: string;
  content: string;
  status: UserMessageStatus;
  clientMsgId: string | null;
  seq: number | null;
  occurredAt: string | null;
}

export interface AgentMessage {
  type: 'agent';
  key: string;
  text: string;
  seq: number;
  occurredAt: string;
}

/** A reply written by a person on the desk: shown with their display name. */
export interface OperatorMessage {
  type: 'operator';
  key: string;
  text: string;
  name: string;
  seq: number;
  occurredAt: string;
}

export interface StatusLine {
  type: 'status';
  key: string;
  kind: string;
  text: string;
  seq: number;
  occurredAt: string;
  /** A tool call's line: `<turn_id>/<call_id>`, so its result updates it. */
  callKey?: string;
  /** The tool's permission (`read`, `write`), from its `tool.called` (or its version 2 result). */
  permission?: string;
}

/** The agent asked the user to confirm a write; the next message answers. */
export interface OpenConfirmation {
  seq: number;
  tool: string | null;
}

export type ChatItem = UserMessage | AgentMessage | OperatorMessage | StatusLine;

/** A reply growing while a model writes it (`delta` frames of one turn). */
export interface DraftReply {
  turnId: string;
  text: string;
}

/** How many replied turns are remembered, to drop their late pieces. */
const REPLIED_TURNS_KEPT = 16;

export interface ChatNotice {
  code: string;
  text: string;
}

export interface ChatState {
  threadId: string | null;
  token: string | null;
  /** Highest event `seq` seen: the `after_seq` to resume from. */
  lastSeq: number;
  items: ChatItem[];
  agentTyping: boolean;
  notice: ChatNotice | null;
  /** The server refused to resume this thread; reconnecting with it again cannot help. */
  resumeRefused: boolean;
  confirmation: OpenConfirmation | null;
  /** The reply being written, shown growing until its `agent.replied` arrives. */
  draft: DraftReply | null;
  /** Turns whose reply arrived (the latest few): their late pieces are dropped. */
  repliedTurns: string[];
}

export type ChatAction =
  | { type: 'frame'; frame: ServerFrame }
  | { type: 'typed'; clientMsgId: string; content: string }
  | { type: 'retry'; clientMsgId: string }
  | { type: 'dismissNotice' }
  | { type: 'newConversation' };

export function initialChatState(stored?: { threadId: string; token: string } | null): ChatState {
  return {
    threadId: stored?.threadId ?? null,
    token: stored?.token ?? null,
    lastSeq: 0,
    items: [],
    agentTyping: false,
    notice: null,
    resumeRefused: false,
    confirmation: null,
    draft: null,
    repliedTurns: [],
  };
}

/** Messages typed but not yet acknowledged; resent (same `client_msg_id`) after every (re)connect. */
export function unsentMessages(state: ChatState): UserMessage[] {
  return state.items.filter(
    (item): item is UserMessage => item.type === 'user' && item.status === 'sending' && item.clientMsgId !== null,
  );
}

function stringField(event: EventEnvelope, name: string): string | null {
  const value = event[name];
  return typeof value === 'string' ? value : null;
}

function replaceItem(items: ChatItem[], index: number, item: ChatItem): ChatItem[] {
  const next = items.slice();
  next[index] = item;
  return next;
}

function onMessageReceived(state: ChatState, seq: number, event: EventEnvelope): ChatItem[] {
  const content = stringField(event, 'content') ?? '';
  const clientMsgId = stringField(event, 'client_msg_id');
  const items = state.items;

  // Our own message echoed back: by its id when the event carries it, by the acked seq, or else
  // the oldest unacknowledged message with the same words.
  let index = clientMsgId === null ? -1 : items.findIndex((i) => i.type === 'user' && i.clientMsgId === clientMsgId);
  if (index < 0) index = items.findIndex((i) => i.type === 'user' && i.seq === seq);
  if (index < 0) {
    index = items.findIndex((i) => i.type === 'user' && i.seq === null && i.status !== 'failed' && i.content === content);
  }
  const existing = index >= 0 ? items[index] : undefined;
  if (existing && existing.type === 'user') {
    return replaceItem(items, index, { ...existing, status: 'sent', seq, occurredAt: event.occurred_at });
  }
  return [
    ...items,
    { type: 'user', key: `seq-${seq}`, content, status: 'sent', clientMsgId, seq, occurredAt: event.occurred_at },
  ];
}

function onEvent(state: ChatState, seq: number, event: EventEnvelope): ChatState {
  if (seq <= state.lastSeq) return state;
  if (event.thread_id && state.threadId && event.thread_id !== state.threadId) return state;
  let next: ChatState = { ...state, lastSeq: seq };

  if (event.kind === 'message.received' || event.kind === 'message.redriven') {
    // Any new user message answers (or drops) an open question.
    return { ...next, confirmation: null, items: onMessageReceived(state, seq, event) };
  }
  if (event.kind === 'agent.replied') {
    const text = stringField(event, 'text') ?? '';
    const turnId = event.turn_id ?? '';
    // Version 2: the reply also ends the turn, and says what the turn ended with.
    const end = replyEnd(event);
    const pending = end?.pending ?? null;
    const lines = [
      ...(pending ? [replyStatusLine('confirmation.requested', seq, event)] : []),
      ...(end?.escalation ? [replyStatusLine('conversation.escalated', seq, event)] : []),
    ];
    return {
      ...next,
      ...(pending ? { confirmation: { seq, tool: pending.tool } } : {}),
      agentTyping: false,
      draft: state.draft?.turnId === turnId ? null : state.draft,
      repliedTurns: [turnId, ...state.repliedTurns.filter((t) => t !== turnId)].slice(0, REPLIED_TURNS_KEPT),
      items: [...state.items, ...lines, { type: 'agent', key: `seq-${seq}`, text, seq, occurredAt: event.occurred_at }],
    };
  }
  if (event.kind === 'operator.replied') {
    const item: OperatorMessage = {
      type: 'operator',
      key: `seq-${seq}`,
      text: stringField(event, 'text') ?? '',
      name: stringField(event, 'name') ?? 'Support',
      seq,
      occurredAt: event.occurred_at,
    };
    return { ...next, agentTyping: false, items: [...state.items, item] };
  }
  if (event.kind === 'turn.held' && state.items.some((i) => i.type === 'status' && i.kind === 'turn.held')) {
    return { ...next, agentTyping: false };
  }
  if (event.kind === 'turn.started') return { ...next, agentTyping: true };
  // The draft of this turn was not its reply after all (a tool call follows, or the turn ended).
  const drafted = state.draft !== null && state.draft.turnId === event.turn_id;
  if (drafted && (event.kind === 'tool.called' || event.kind === 'turn.failed' || event.kind === 'turn.completed')) {
    next = { ...next, draft: null };
  }
  if (event.kind === 'turn.completed') return { ...next, agentTyping: false };
  if (isQuietInChat(event.kind)) return next;
  if (kindTone(event.kind) === 'tool') return onToolStep(next, seq, event);

  const confirmation =
    event.kind === 'confirmation.requested' ? { seq, tool: stringField(event, 'tool') } : state.confirmation;
  const tone = kindTone(event.kind);
  return {
    ...next,
    confirmation,
    agentTyping: tone === 'failure' || tone === 'escalation' || event.kind === 'turn.held' ? false : state.agentTyping,
    items: [
      ...state.items,
      {
        type: 'status',
        key: `seq-${seq}`,
        kind: event.kind,
        // A failure event may carry words meant for the user; otherwise say it in general terms.
        text: tone === 'failure' ? (stringField(event, 'text') ?? chatStatusText(event.kind)) : chatStatusText(event.kind),
        seq,
        occurredAt: event.occurred_at,
      },
    ],
  };
}

/**
 * The status line a version 1 event (`kind`) drew, for the same fact on a version 2 reply: same
 * kind and words, keyed apart from the reply of the same `seq`.
 */
function replyStatusLine(kind: string, seq: number, event: EventEnvelope): StatusLine {
  return { type: 'status', key: `seq-${seq}/${kind}`, kind, text: chatStatusText(kind), seq, occurredAt: event.occurred_at };
}

/** A tool call's line: added by `tool.called` (or a version 2 read call's result), updated in place by its result. */
function onToolStep(state: ChatState, seq: number, event: EventEnvelope): ChatState {
  const callId = stringField(event, 'call_id');
  const callKey = callId ? `${event.turn_id ?? ''}/${callId}` : undefined;
  const tool = stringField(event, 'tool');
  const index = callKey ? state.items.findIndex((i) => i.type === 'status' && i.callKey === callKey) : -1;
  const existing = index >= 0 ? state.items[index] : undefined;
  if (existing && existing.type === 'status' && event.kind !== 'tool.called') {
    const text = chatToolText(event.kind, tool, existing.permission ?? null);
    return { ...state, items: replaceItem(state.items, index, { ...existing, kind: event.kind, text }) };
  }
  const permission = stringField(event, 'permission');
  const line: StatusLine = {
    type: 'status',
    key: `seq-${seq}`,
    kind: event.kind,
    text: chatToolText(event.kind, tool, permission),
    seq,
    occurredAt: event.occurred_at,
    ...(callKey ? { callKey } : {}),
    ...(permission ? { permission } : {}),
  };
  // A result that stands for its call (version 2) ends a draft of its turn as a `tool.called` does.
  const drafted = state.draft !== null && state.draft.turnId === event.turn_id;
  const draft = drafted && carriesCall(event) ? null : state.draft;
  return { ...state, draft, items: [...state.items, line] };
}

function onDelta(state: ChatState, turnId: string, text: string): ChatState {
  if (state.repliedTurns.includes(turnId)) return state;
  const draft = state.draft?.turnId === turnId ? { turnId, text: state.draft.text + text } : { turnId, text };
  return { ...state, draft };
}

function onAck(state: ChatState, clientMsgId: string, seq: number): ChatState {
  const index = state.items.findIndex((i) => i.type === 'user' && i.clientMsgId === clientMsgId);
  const item = index >= 0 ? state.items[index] : undefined;
  if (!item || item.type !== 'user') return state;
  const echoedElsewhere = state.items.some((i, at) => at !== index && i.type === 'user' && i.seq === seq);
  if (echoedElsewhere) {
    // The echo arrived first and could not be matched to this message: keep the echo only.
    return { ...state, items: state.items.filter((_, at) => at !== index) };
  }
  const notice = state.notice && rejectsMessage(state.notice.code) ? null : state.notice;
  return { ...state, notice, items: replaceItem(state.items, index, { ...item, status: 'sent', seq }) };
}

function onError(state: ChatState, code: string, clientMsgId: string | undefined): ChatState {
  const notice = { code, text: describeErrorCode(code) };
  if (refusesResume(code)) return { ...state, notice, resumeRefused: true, agentTyping: false };
  if (!rejectsMessage(code)) return { ...state, notice };
  // The contract does not say which message was refused. Mark the one named, or every message
  // still waiting for an ack; an ack arriving later puts a wrongly marked one right again.
  const items = state.items.map((item) =>
    item.type === 'user' &&
    item.status === 'sending' &&
    (clientMsgId === undefined || item.clientMsgId === clientMsgId)
      ? { ...item, status: 'failed' as const }
      : item,
  );
  return { ...state, notice, items };
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'frame': {
      const frame = action.frame;
      switch (frame.type) {
        case 'session':
          if (state.threadId !== null && state.threadId !== frame.thread_id) {
            // A different thread than the one we asked for: start its transcript afresh, keeping
            // only what the user typed and has not been stored yet.
            return {
              ...initialChatState({ threadId: frame.thread_id, token: frame.token }),
              items: state.items.filter((i) => i.type === 'user' && i.seq === null),
            };
          }
          return { ...state, threadId: frame.thread_id, token: frame.token, resumeRefused: false };
        case 'ack':
          return onAck(state, frame.client_msg_id, frame.seq);
        case 'event':
          return onEvent(state, frame.seq, frame.event);
        case 'error':
          return onError(state, frame.code, frame.client_msg_id);
        case 'pong':
          return state;
        case 'delta':
          return onDelta(state, frame.turn_id, frame.text);
      }
      return state;
    }
    case 'typed':
      return {
        ...state,
        confirmation: null,
        items: [
          ...state.items,
          {
            type: 'user',
            key: `local-${action.clientMsgId}`,
            content: action.content,
            status: 'sending',
            clientMsgId: action.clientMsgId,
            seq: null,
            occurredAt: null,
          },
        ],
      };
    case 'retry':
      return {
        ...state,
        notice: null,
        items: state.items.map((item) =>
          item.type === 'user' && item.clientMsgId === action.clientMsgId && item.status === 'failed'
            ? { ...item, status: 'sending' as const }
            : item,
        ),
      };
    case 'dismissNotice':
      return { ...state, notice: null };
    case 'newConversation':
      return initialChatState(null);
  }
}
