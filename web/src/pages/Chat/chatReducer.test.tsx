import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope, ServerFrame } from '../../api/types';
import { chatReducer, initialChatState, unsentMessages, type ChatAction, type ChatState } from './chatReducer';
import { MessageList } from './MessageList';

const THREAD = 'thread-1';

function event(seq: number, kind: string, fields: Partial<EventEnvelope> = {}): ServerFrame {
  return {
    type: 'event',
    seq,
    event: {
      event_id: `ev-${seq}`,
      kind,
      thread_id: THREAD,
      turn_id: 'turn-1',
      occurred_at: '2025-11-25T14:00:00Z',
      ...fields,
    },
  };
}

const frame = (f: ServerFrame): ChatAction => ({ type: 'frame', frame: f });
const session: ChatAction = frame({ type: 'session', thread_id: THREAD, token: 'tok' });

function run(actions: ChatAction[], start: ChatState = initialChatState()): ChatState {
  return actions.reduce(chatReducer, start);
}

function showTranscript(state: ChatState) {
  render(<MessageList items={state.items} agentTyping={state.agentTyping} onRetry={() => {}} draft={state.draft} />);
}

const delta = (text: string, turnId = 'turn-1'): ChatAction => frame({ type: 'delta', turn_id: turnId, text });

describe('a reply written while the model writes it', () => {
  it('grows from its delta frames and is replaced by the stored reply, once', () => {
    const start = run([session, frame(event(5, 'message.received', { content: 'Hi' })), frame(event(6, 'turn.started'))]);
    const growing = run([delta('It '), delta('ships '), delta('tomor')], start);
    showTranscript(growing);
    expect(screen.getByText('It ships tomor')).toBeTruthy();
    expect(screen.queryByText('Support is typing…')).toBeNull();

    const replied = run([frame(event(7, 'agent.replied', { text: 'It ships tomorrow.' })), delta('row.')], growing);
    expect(replied.draft).toBeNull();
    const done = run([frame(event(8, 'turn.completed'))], replied);
    document.body.innerHTML = '';
    showTranscript(done);
    expect(screen.getAllByText('It ships tomorrow.')).toHaveLength(1);
    expect(screen.queryByText(/tomor$/)).toBeNull();
    expect(document.querySelector('[data-draft]')).toBeNull();
  });

  it('drops a draft that was not the reply: a tool call follows it', () => {
    const state = run([
      session,
      frame(event(6, 'turn.started')),
      delta('Let me look'),
      frame(event(7, 'tool.called', { call_id: 'tool-1', tool: 'getOrder', permission: 'read' })),
    ]);
    expect(state.draft).toBeNull();
    const next = run([delta('Found it.')], state);
    expect(next.draft).toEqual({ turnId: 'turn-1', text: 'Found it.' });
  });

  it('keeps the pieces of another turn apart', () => {
    const state = run([session, delta('one', 'turn-1'), delta('two', 'turn-2')]);
    expect(state.draft).toEqual({ turnId: 'turn-2', text: 'two' });
  });
});

describe('chat state from frames', () => {
  it('shows the user message and the agent reply exactly once, even when an event repeats', () => {
    const state = run([
      session,
      { type: 'typed', clientMsgId: 'm1', content: 'Where is my order?' },
      frame({ type: 'ack', client_msg_id: 'm1', seq: 5 }),
      frame(event(5, 'message.received', { content: 'Where is my order?' })),
      frame(event(6, 'turn.started')),
      frame(event(7, 'agent.replied', { text: 'It ships tomorrow.' })),
      frame(event(7, 'agent.replied', { text: 'It ships tomorrow.' })),
      frame(event(8, 'turn.completed')),
    ]);

    showTranscript(state);
    expect(screen.getAllByText('Where is my order?')).toHaveLength(1);
    expect(screen.getAllByText('It ships tomorrow.')).toHaveLength(1);
    expect(screen.queryByText('Sending…')).toBeNull();
    expect(screen.queryByText('Support is typing…')).toBeNull();
    expect(state.lastSeq).toBe(8);
    expect(state.threadId).toBe(THREAD);
  });

  it('shows a typed message as sending until it is acknowledged', () => {
    const state = run([session, { type: 'typed', clientMsgId: 'm1', content: 'Hello' }]);
    showTranscript(state);
    expect(screen.getByText('Hello')).toBeTruthy();
    expect(screen.getByText('Sending…')).toBeTruthy();
    expect(unsentMessages(state).map((m) => m.clientMsgId)).toEqual(['m1']);
  });

  it('does not duplicate a message whose echo arrives before its ack', () => {
    const state = run([
      session,
      { type: 'typed', clientMsgId: 'm1', content: 'Hi' },
      frame(event(3, 'message.received', { content: 'Hi' })),
      frame({ type: 'ack', client_msg_id: 'm1', seq: 3 }),
    ]);
    showTranscript(state);
    expect(screen.getAllByText('Hi')).toHaveLength(1);
    expect(state.items).toHaveLength(1);
    expect(unsentMessages(state)).toHaveLength(0);
  });

  it('matches the echo by client_msg_id when the event carries it', () => {
    const state = run([
      session,
      { type: 'typed', clientMsgId: 'm1', content: 'Same words' },
      { type: 'typed', clientMsgId: 'm2', content: 'Same words' },
      frame(event(3, 'message.received', { content: 'Same words', client_msg_id: 'm2' })),
      frame({ type: 'ack', client_msg_id: 'm2', seq: 3 }),
      frame({ type: 'ack', client_msg_id: 'm1', seq: 4 }),
      frame(event(4, 'message.received', { content: 'Same words', client_msg_id: 'm1' })),
    ]);
    expect(state.items.map((i) => (i.type === 'user' ? [i.clientMsgId, i.seq, i.status] : null))).toEqual([
      ['m1', 4, 'sent'],
      ['m2', 3, 'sent'],
    ]);
  });

  it('keeps events that arrive after an ack with a higher seq', () => {
    // The ack for seq 10 overtakes the reply with seq 9 from the turn before.
    const state = run([
      session,
      { type: 'typed', clientMsgId: 'm2', content: 'Second question' },
      frame({ type: 'ack', client_msg_id: 'm2', seq: 10 }),
      frame(event(9, 'agent.replied', { text: 'First answer' })),
      frame(event(10, 'message.received', { content: 'Second question' })),
    ]);
    showTranscript(state);
    expect(screen.getByText('First answer')).toBeTruthy();
    expect(screen.getAllByText('Second question')).toHaveLength(1);
  });

  it('ignores the overlap when a resume replays events already shown', () => {
    const before = run([
      session,
      frame(event(1, 'message.received', { content: 'Hello' })),
      frame(event(2, 'agent.replied', { text: 'Hi there' })),
    ]);
    const after = run(
      [
        session,
        frame(event(1, 'message.received', { content: 'Hello' })),
        frame(event(2, 'agent.replied', { text: 'Hi there' })),
        frame(event(3, 'agent.replied', { text: 'Anything else?' })),
      ],
      before,
    );
    showTranscript(after);
    expect(screen.getAllByText('Hello')).toHaveLength(1);
    expect(screen.getAllByText('Hi there')).toHaveLength(1);
    expect(screen.getByText('Anything else?')).toBeTruthy();
  });

  it('shows messages from another tab of the same conversation', () => {
    const state = run([session, frame(event(1, 'message.received', { content: 'Typed elsewhere' }))]);
    showTranscript(state);
    expect(screen.getByText('Typed elsewhere')).toBeTruthy();
  });

  it('shows tool calls and escalation as short status lines and hides turn bookkeeping', () => {
    const state = run([
      session,
      frame(event(1, 'turn.started')),
      frame(event(2, 'tool.called', { tool: 'get_order' })),
      frame(event(3, 'escalation.requested')),
      frame(event(4, 'turn.completed')),
    ]);
    showTranscript(state);
    expect(screen.getByText('Looking that up (get_order)…')).toBeTruthy();
    expect(screen.getByText(/passed to a member of our support team/)).toBeTruthy();
    expect(screen.queryByText(/turn/i)).toBeNull();
  });

  it('updates a tool call’s line with its result instead of adding another', () => {
    const state = run([
      session,
      frame(event(1, 'tool.called', { call_id: 'tool-1', tool: 'getOrder', permission: 'read' })),
      frame(event(2, 'tool.called', { call_id: 'tool-2', tool: 'cancelOrder', permission: 'write' })),
      frame(event(3, 'tool.succeeded', { call_id: 'tool-1', tool: 'getOrder' })),
      frame(event(4, 'tool.failed', { call_id: 'tool-2', tool: 'cancelOrder' })),
    ]);
    expect(state.items.map((i) => (i.type === 'status' ? i.text : null))).toEqual([
      'Looked that up (getOrder)',
      'That did not work (cancelOrder)',
    ]);
  });

  it('keeps a confirmation question open until the next user message', () => {
    const asked = run([
      session,
      frame(event(1, 'confirmation.requested', { tool: 'cancelOrder', params: { order_id: 'ORD-1' } })),
      frame(event(2, 'agent.replied', { text: 'Shall I cancel order ORD-1?' })),
    ]);
    expect(asked.confirmation).toEqual({ seq: 1, tool: 'cancelOrder' });
    showTranscript(asked);
    expect(screen.getByText(/needs your confirmation/)).toBeTruthy();

    expect(chatReducer(asked, { type: 'typed', clientMsgId: 'm9', content: 'yes' }).confirmation).toBeNull();
    expect(chatReducer(asked, frame(event(3, 'message.received', { content: 'yes' }))).confirmation).toBeNull();
  });

  it('marks a rate-limited message as not sent and offers a retry', () => {
    const state = run([
      session,
      { type: 'typed', clientMsgId: 'm1', content: 'Too fast' },
      frame({ type: 'error', code: 'rate_limited', message: 'rate limit exceeded' }),
    ]);
    showTranscript(state);
    expect(screen.getByText('Not sent')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Retry' })).toBeTruthy();
    expect(state.notice?.text).toMatch(/too quickly/);

    const retried = chatReducer(state, { type: 'retry', clientMsgId: 'm1' });
    expect(unsentMessages(retried).map((m) => m.clientMsgId)).toEqual(['m1']);
    expect(retried.notice).toBeNull();
  });

  it('stops resuming a thread whose token is refused', () => {
    const state = run([
      frame({ type: 'error', code: 'unauthorized', message: 'bad token' }),
    ], initialChatState({ threadId: THREAD, token: 'old' }));
    expect(state.resumeRefused).toBe(true);
    expect(state.notice?.text).toMatch(/Start a new conversation/);
  });

  it('starts an empty transcript for a new conversation', () => {
    const state = run([session, frame(event(1, 'agent.replied', { text: 'Hi' })), { type: 'newConversation' }]);
    expect(state).toEqual(initialChatState());
  });

  it('tells the customer when a person joins and when the assistant answers again, never naming notes', () => {
    const state = run([
      session,
      frame(event(1, 'conversation.assigned', { operator_id: 'op-1', name: 'Alex' })),
      frame(event(2, 'operator.replied', { text: 'Hello, Alex here.', name: 'Alex', operator_id: 'op-1' })),
      frame(event(3, 'conversation.released', { operator_id: 'op-1', name: 'Alex' })),
    ]);
    expect(state.items.map((i) => (i.type === 'status' ? i.text : i.type === 'operator' ? `${i.name}: ${i.text}` : i.type))).toEqual([
      'A member of our support team has joined the conversation.',
      'Alex: Hello, Alex here.',
      'Our assistant is answering again.',
    ]);
  });
});

/**
 * Version 2 of the events (issue 19) writes fewer events per turn: the routing in `turn.started`,
 * a read call as its result alone, and the turn's end on its `agent.replied`. Streams keep version 1
 * turns, so the chat must show a customer the same for either.
 */
describe('a version 2 turn reads as the version 1 turn of the same facts', () => {
  const reply = { agent: 'orders', engine: 'rules' };
  const ended = (outcome: string) => ({ outcome, latency_ms: 15, message_seq: 1 });
  const getOrder = { call_id: 'tool-1', tool: 'getOrder', params: { order_id: 'ORD-1002' } };
  const result = { status: 200, result: { status: 'shipped' }, latency_ms: 3, attempts: 1 };
  const cancel = { agent: 'orders', tool: 'cancelOrder', params: { order_id: 'ORD-1001' } };
  const escalation = { reason: 'tool_failures', detail: 'getOrder failed twice' };

  /** A turn's events as `version` writes them, numbered from seq 1 (the customer's message). */
  function turn(version: 1 | 2, ...events: Array<[string, Partial<EventEnvelope>]>): ChatAction[] {
    return [
      session,
      ...events.map(([kind, fields], index) => frame(event(index + 1, kind, { schema_version: version, ...fields }))),
    ];
  }

  /** The transcript's lines as drawn, whether Yes / No is offered (and for which tool), the draft. */
  function whatTheUserSees(actions: ChatAction[]) {
    const state = run(actions);
    const { container, unmount } = render(
      <MessageList items={state.items} agentTyping={state.agentTyping} onRetry={() => {}} draft={state.draft} />,
    );
    const lines = [...container.querySelectorAll('li')].map((li) => li.textContent);
    unmount();
    const answers = state.confirmation && !state.agentTyping ? { tool: state.confirmation.tool } : null;
    return { lines, answers, draft: state.draft };
  }

  it('a read tool’s turn: one line for the call, from its result alone, then the reply', () => {
    const v1 = whatTheUserSees(
      turn(
        1,
        ['message.received', { content: 'Where is ORD-1002?' }],
        ['turn.started', { message_seq: 1 }],
        ['agent.routed', { agent: 'orders', reason: 'keyword "order"' }],
        ['tool.called', { ...getOrder, permission: 'read' }],
        ['tool.succeeded', { call_id: 'tool-1', tool: 'getOrder', ...result }],
        ['agent.replied', { text: 'Order ORD-1002 is shipped.', ...reply }],
        ['turn.completed', ended('replied')],
      ),
    );
    const v2Events = turn(
      2,
      ['message.received', { content: 'Where is ORD-1002?' }],
      ['turn.started', { message_seq: 1, agent: 'orders', reason: 'keyword "order"' }],
      ['tool.succeeded', { ...getOrder, permission: 'read', ...result }],
      ['agent.replied', { text: 'Order ORD-1002 is shipped.', ...reply, ...ended('replied') }],
    );
    const v2 = whatTheUserSees(v2Events);

    expect(v2).toEqual(v1);
    expect(v2.lines).toEqual([
      expect.stringContaining('Where is ORD-1002?'),
      'Looked that up (getOrder)',
      expect.stringContaining('Order ORD-1002 is shipped.'),
    ]);
    // The typing indicator runs while the call is made and stops at the reply that ends the turn.
    expect(whatTheUserSees(v2Events.slice(0, 4)).lines).toContain('Support is typing…');
  });

  it('a write confirmed: the line of the call, made and done', () => {
    const v1 = whatTheUserSees(
      turn(
        1,
        ['message.received', { content: 'yes' }],
        ['turn.started', { message_seq: 1, confirming: cancel }],
        ['agent.routed', { agent: 'orders', reason: 'confirmation' }],
        ['tool.called', { ...cancel, call_id: 'tool-1', permission: 'write' }],
        ['tool.succeeded', { call_id: 'tool-1', tool: 'cancelOrder', ...result }],
        ['agent.replied', { text: 'Order ORD-1001 is cancelled.', ...reply }],
        ['turn.completed', ended('replied')],
      ),
    );
    const v2 = whatTheUserSees(
      turn(
        2,
        ['message.received', { content: 'yes' }],
        ['turn.started', { message_seq: 1, confirming: cancel, agent: 'orders', reason: 'confirmation' }],
        ['tool.called', { ...cancel, call_id: 'tool-1', permission: 'write' }],
        ['tool.succeeded', { ...cancel, call_id: 'tool-1', permission: 'write', ...result }],
        ['agent.replied', { text: 'Order ORD-1001 is cancelled.', ...reply, ...ended('replied') }],
      ),
    );
    expect(v2).toEqual(v1);
    expect(v2.lines).toContain('Change made (cancelOrder)');
  });

  it('a confirmation question: its status line, the question, and Yes / No for the write', () => {
    const question = 'Shall I cancel order ORD-1001?';
    const v1 = whatTheUserSees(
      turn(
        1,
        ['message.received', { content: 'Please cancel ORD-1001' }],
        ['turn.started', { message_seq: 1 }],
        ['agent.routed', { agent: 'orders', reason: 'keyword "cancel"' }],
        ['confirmation.requested', { ...cancel, prompt: question }],
        ['agent.replied', { text: question, ...reply }],
        ['turn.completed', { ...ended('awaiting_confirmation'), pending: cancel }],
      ),
    );
    const v2 = whatTheUserSees(
      turn(
        2,
        ['message.received', { content: 'Please cancel ORD-1001' }],
        ['turn.started', { message_seq: 1, agent: 'orders', reason: 'keyword "cancel"' }],
        ['agent.replied', { text: question, ...reply, ...ended('awaiting_confirmation'), pending: cancel }],
      ),
    );
    expect(v2).toEqual(v1);
    expect(v2.answers).toEqual({ tool: 'cancelOrder' });
    expect(v2.lines).toEqual([
      expect.stringContaining('Please cancel ORD-1001'),
      'The agent needs your confirmation before going ahead.',
      expect.stringContaining(question),
    ]);
  });

  it('an escalated turn: the failed calls, the hand-over line, then the reply', () => {
    const handedOver = 'A member of our team will get back to you here.';
    const failed = { category: 'retryable', error: 'HTTP 503', status: 503, latency_ms: 3, attempts: 3 };
    const v1 = whatTheUserSees(
      turn(
        1,
        ['message.received', { content: 'Where is ORD-1002?' }],
        ['turn.started', { message_seq: 1 }],
        ['agent.routed', { agent: 'orders', reason: 'keyword "order"' }],
        ['tool.called', { ...getOrder, permission: 'read' }],
        ['tool.failed', { call_id: 'tool-1', tool: 'getOrder', ...failed }],
        ['tool.called', { ...getOrder, call_id: 'tool-2', permission: 'read' }],
        ['tool.failed', { call_id: 'tool-2', tool: 'getOrder', ...failed }],
        ['conversation.escalated', { ...escalation, agent: 'orders' }],
        ['agent.replied', { text: handedOver, ...reply }],
        ['turn.completed', ended('escalated')],
      ),
    );
    const v2 = whatTheUserSees(
      turn(
        2,
        ['message.received', { content: 'Where is ORD-1002?' }],
        ['turn.started', { message_seq: 1, agent: 'orders', reason: 'keyword "order"' }],
        ['tool.failed', { ...getOrder, permission: 'read', ...failed }],
        ['tool.failed', { ...getOrder, call_id: 'tool-2', permission: 'read', ...failed }],
        ['agent.replied', { text: handedOver, ...reply, ...ended('escalated'), escalation }],
      ),
    );
    expect(v2).toEqual(v1);
    expect(v2.lines).toEqual([
      expect.stringContaining('Where is ORD-1002?'),
      'That did not work (getOrder)',
      'That did not work (getOrder)',
      'Your conversation has been passed to a member of our support team.',
      expect.stringContaining(handedOver),
    ]);
  });

  it('drops a draft that was not the reply when a read call’s result follows it, as a tool.called does', () => {
    const v1 = run([
      session,
      frame(event(2, 'turn.started')),
      delta('Let me look'),
      frame(event(3, 'tool.called', { ...getOrder, permission: 'read' })),
      frame(event(4, 'tool.succeeded', { call_id: 'tool-1', tool: 'getOrder', ...result })),
    ]);
    const v2 = run([
      session,
      frame(event(2, 'turn.started', { agent: 'orders', reason: 'default' })),
      delta('Let me look'),
      frame(event(3, 'tool.succeeded', { ...getOrder, permission: 'read', ...result })),
    ]);
    expect(v1.draft).toBeNull();
    expect(v2.draft).toBeNull();
    expect(run([delta('Found it.')], v2).draft).toEqual({ turnId: 'turn-1', text: 'Found it.' });
  });
});
