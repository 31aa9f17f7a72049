import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ServerFrame } from '../../api/types';
import { FakeWebSocket } from '../../test/fakeWebSocket';
import { ChatPage } from './ChatPage';

function event(seq: number, kind: string, fields: Record<string, unknown>): ServerFrame {
  return {
    type: 'event',
    seq,
    event: { event_id: `e${seq}`, kind, thread_id: 'th', turn_id: 't1', occurred_at: '2025-11-25T14:00:00Z', ...fields },
  };
}

function serve(socket: FakeWebSocket, ...frames: ServerFrame[]) {
  act(() => {
    for (const frame of frames) socket.receive(frame);
  });
}

function connect(): FakeWebSocket {
  const socket = FakeWebSocket.latest();
  act(() => socket.open());
  serve(socket, { type: 'session', thread_id: 'th', token: 'secret' });
  return socket;
}

function typeAndPressEnter(text: string, shiftKey = false) {
  const box = screen.getByLabelText('Your message');
  fireEvent.change(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter', shiftKey });
}

describe('Chat page', () => {
  beforeEach(() => {
    FakeWebSocket.instances = [];
    vi.stubGlobal('WebSocket', FakeWebSocket);
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('sends on Enter and shows the conversation once as frames arrive', () => {
    render(<ChatPage />);
    const socket = connect();
    expect(socket.url).toBe(`ws://${window.location.host}/ws`);

    typeAndPressEnter('My parcel is late');
    expect(socket.sent).toHaveLength(1);
    const sent = socket.sent[0] as { type: string; content: string; client_msg_id: string };
    expect(sent).toMatchObject({ type: 'message', content: 'My parcel is late' });
    expect(sent.client_msg_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(screen.getByText('Sending…')).toBeTruthy();
    expect((screen.getByLabelText('Your message') as HTMLTextAreaElement).value).toBe('');

    serve(
      socket,
      { type: 'ack', client_msg_id: sent.client_msg_id, seq: 1 },
      event(1, 'message.received', { content: 'My parcel is late' }),
      event(2, 'agent.replied', { text: 'Sorry! It arrives Friday.' }),
      event(2, 'agent.replied', { text: 'Sorry! It arrives Friday.' }),
    );

    expect(screen.getAllByText('My parcel is late')).toHaveLength(1);
    expect(screen.getAllByText('Sorry! It arrives Friday.')).toHaveLength(1);
    expect(screen.queryByText('Sending…')).toBeNull();
    expect(screen.getByTestId('reply-announcer').textContent).toBe('Support replied: Sorry! It arrives Friday.');
    expect(JSON.parse(localStorage.getItem('smart-support.chat') ?? 'null')).toEqual({
      threadId: 'th',
      token: 'secret',
      lastSeq: 2,
    });
  });

  it('offers Yes / No when the agent asks to confirm, and sends the answer', () => {
    render(<ChatPage />);
    const socket = connect();
    serve(
      socket,
      event(1, 'message.received', { content: 'Cancel ORD-1001' }),
      event(2, 'turn.started', {}),
      event(3, 'confirmation.requested', { tool: 'cancelOrder', params: { order_id: 'ORD-1001' } }),
      event(4, 'agent.replied', { text: 'Shall I cancel order ORD-1001?' }),
      event(5, 'turn.completed', { outcome: 'awaiting_confirmation' }),
    );

    const answers = screen.getByRole('group', { name: 'Answer the question' });
    fireEvent.click(within(answers).getByRole('button', { name: 'Yes, go ahead' }));
    expect(socket.sent).toEqual([{ type: 'message', content: 'yes', client_msg_id: expect.any(String) }]);
    expect(screen.queryByRole('group', { name: 'Answer the question' })).toBeNull();
  });

  it('offers Yes / No when a version 2 reply asks to confirm (its pending write), and sends the answer', () => {
    render(<ChatPage />);
    const socket = connect();
    const pending = { agent: 'orders', tool: 'cancelOrder', params: { order_id: 'ORD-1001' } };
    serve(
      socket,
      event(1, 'message.received', { content: 'Cancel ORD-1001' }),
      event(2, 'turn.started', { message_seq: 1, agent: 'orders', reason: 'keyword "cancel"' }),
      event(3, 'agent.replied', {
        text: 'Shall I cancel order ORD-1001?',
        agent: 'orders',
        engine: 'rules',
        outcome: 'awaiting_confirmation',
        latency_ms: 4,
        message_seq: 1,
        pending,
      }),
    );

    expect(screen.getByText('The agent needs your confirmation before going ahead.')).toBeTruthy();
    expect(screen.queryByText('Support is typing…')).toBeNull();
    const answers = screen.getByRole('group', { name: 'Answer the question' });
    fireEvent.click(within(answers).getByRole('button', { name: 'No, cancel' }));
    expect(socket.sent).toEqual([{ type: 'message', content: 'no', client_msg_id: expect.any(String) }]);
    expect(screen.queryByRole('group', { name: 'Answer the question' })).toBeNull();
  });

  it('Shift+Enter does not send', () => {
    render(<ChatPage />);
    const socket = connect();
    typeAndPressEnter('line one', true);
    expect(socket.sent).toHaveLength(0);
  });

  it('shows a banner when the connection drops and resumes after the last seen event', () => {
    vi.useFakeTimers();
    render(<ChatPage />);
    const first = connect();
    serve(first, event(7, 'agent.replied', { text: 'Hello!' }));

    act(() => first.drop());
    expect(screen.getByText(/The connection was lost/)).toBeTruthy();
    expect(screen.getByText(/Trying again in 1 second/)).toBeTruthy();

    // A message typed while offline waits and goes out after the reconnect.
    typeAndPressEnter('Are you there?');

    fireEvent.click(screen.getByRole('button', { name: 'Reconnect now' }));
    const second = FakeWebSocket.latest();
    expect(second).not.toBe(first);
    const url = new URL(second.url);
    expect(url.pathname).toBe('/ws');
    expect(url.searchParams.get('thread_id')).toBe('th');
    expect(url.searchParams.get('token')).toBe('secret');
    expect(url.searchParams.get('after_seq')).toBe('7');

    act(() => second.open());
    serve(second, { type: 'session', thread_id: 'th', token: 'secret' });
    expect(screen.queryByText(/The connection was lost/)).toBeNull();
    expect(second.sent).toEqual([{ type: 'message', content: 'Are you there?', client_msg_id: expect.any(String) }]);
    expect(screen.getAllByText('Hello!')).toHaveLength(1);
  });

  it('reconnects by itself with growing waits', () => {
    vi.useFakeTimers();
    render(<ChatPage />);
    act(() => FakeWebSocket.latest().drop());
    expect(FakeWebSocket.instances).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1000));
    expect(FakeWebSocket.instances).toHaveLength(2);
    act(() => FakeWebSocket.latest().drop());
    expect(screen.getByText(/Trying again in 2 seconds/)).toBeTruthy();
    act(() => vi.advanceTimersByTime(1999));
    expect(FakeWebSocket.instances).toHaveLength(2);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeWebSocket.instances).toHaveLength(3);
  });

  it('resumes the stored conversation and lets the user start a new one', () => {
    localStorage.setItem('smart-support.chat', JSON.stringify({ threadId: 'old', token: 'k', lastSeq: 3 }));
    render(<ChatPage />);
    const url = new URL(FakeWebSocket.latest().url);
    expect(url.searchParams.get('thread_id')).toBe('old');
    // The transcript is not kept across reloads, so a fresh page replays the whole thread.
    expect(url.searchParams.get('after_seq')).toBe('0');

    fireEvent.click(screen.getByRole('button', { name: 'New conversation' }));
    expect(FakeWebSocket.latest().url).toBe(`ws://${window.location.host}/ws`);
    expect(localStorage.getItem('smart-support.chat')).toBeNull();
  });

  it('explains a refused resume in plain words and does not retry it', () => {
    vi.useFakeTimers();
    localStorage.setItem('smart-support.chat', JSON.stringify({ threadId: 'old', token: 'bad', lastSeq: 0 }));
    render(<ChatPage />);
    const socket = FakeWebSocket.latest();
    act(() => socket.open());
    serve(socket, { type: 'error', code: 'unauthorized', message: 'invalid token' });
    act(() => socket.drop());
    expect(screen.getByRole('alert').textContent).toMatch(/can no longer be opened/);
    act(() => vi.advanceTimersByTime(30_000));
    expect(FakeWebSocket.instances).toHaveLength(1);

    fireEvent.click(screen.getByRole('button', { name: 'Start a new conversation' }));
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(FakeWebSocket.latest().url).toBe(`ws://${window.location.host}/ws`);
  });

  it('shows an operator’s reply with their name, apart from the assistant’s, and says once that a person will answer', () => {
    render(<ChatPage />);
    const socket = connect();
    serve(
      socket,
      event(1, 'message.received', { content: 'I want a person' }),
      event(2, 'conversation.escalated', { reason: 'customer_asked' }),
      event(3, 'message.received', { content: 'Hello?' }),
      event(4, 'turn.held', { reason: 'escalated' }),
      event(5, 'message.received', { content: 'Anyone?' }),
      event(6, 'turn.held', { reason: 'escalated' }),
      event(7, 'operator.replied', { text: 'Hi, I am on it.', name: 'Alex', operator_id: 'op-1', client_msg_id: 'c1' }),
    );

    const transcript = screen.getByRole('list', { name: 'Conversation' });
    expect(within(transcript).getAllByText('A member of our support team will answer you here.')).toHaveLength(1);
    const reply = within(transcript).getByText('Hi, I am on it.').closest('li');
    expect(reply?.textContent).toMatch(/^Alex of the support team said:Hi, I am on it\./);
    expect(screen.queryByText('Support is typing…')).toBeNull();
    expect(screen.getByTestId('reply-announcer').textContent).toBe('Alex replied: Hi, I am on it.');
  });
});
