import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { describe, expect, it, vi } from 'vitest';
import { SessionProvider } from '../../api/session';
import type { Operator } from '../../api/types';
import { deskEvent, FakeEventSource, useFakeEventSource } from '../../test/fakeEventSource';
import { mockFetch, requestMethod, requestedUrl, type Reply } from '../../test/mockFetch';
import { DeskConversationPage } from './DeskConversationPage';

const alex: Operator = { id: 'op-1', name: 'Alex', email: 'alex@example.com', role: 'agent' };
const THREAD = 'th-1';

const step = (seq: number, kind: string, fields: Record<string, unknown> = {}) => ({
  seq,
  kind,
  occurred_at: '2026-12-06T10:00:00Z',
  turn_id: null,
  event_id: `e${seq}`,
  thread_id: THREAD,
  ...fields,
});

const escalated = [
  step(1, 'message.received', { content: 'My parcel is broken', client_msg_id: 'c1' }),
  step(2, 'agent.replied', { text: 'Sorry to hear that.', agent: 'orders' }),
  step(3, 'conversation.escalated', { reason: 'customer_asked' }),
  step(4, 'note.added', { text: 'Probably a carrier claim', operator_id: 'op-2', name: 'Sam' }),
];
const takenBy = (id: string, name: string) => step(5, 'conversation.assigned', { operator_id: id, name });

/** The two reads the page starts with: the summary and the steps. */
function conversation(steps: ReturnType<typeof step>[], status = 'escalated'): Reply[] {
  return [
    { body: { thread_id: THREAD, status, started_at: '2026-12-06T10:00:00Z', last_activity_at: '2026-12-06T10:00:00Z', message_count: 1, turn_count: 1, preview: 'My parcel is broken' } },
    { body: { thread_id: THREAD, steps } },
  ];
}

function renderPage() {
  render(
    <SessionProvider initialOperator={alex}>
      <MemoryRouter initialEntries={[`/inbox/${THREAD}`]}>
        <Routes>
          <Route path="/inbox/:threadId" element={<DeskConversationPage />} />
        </Routes>
      </MemoryRouter>
    </SessionProvider>,
  );
}

// The first render of a test file can take a while on a busy machine: more than the default second.
const steps = async () =>
  within(await screen.findByRole('list', { name: 'Conversation steps' }, { timeout: 5000 })).getAllByRole('listitem');
const body = (fetchMock: ReturnType<typeof mockFetch>, call: number): unknown =>
  JSON.parse(String(fetchMock.mock.calls[call]?.[1]?.body));

function typeInto(label: string, text: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value: text } });
}

describe('Desk conversation view', () => {
  // Also puts fetch back after each test.
  useFakeEventSource();

  it('shows the customer, the bot and internal notes, the note marked as such', async () => {
    const fetchMock = mockFetch(...conversation(escalated));
    renderPage();
    const [message, reply, escalation, note] = await steps();
    expect(within(message!).getByText('My parcel is broken')).toBeTruthy();
    expect(within(reply!).getByText('Sorry to hear that.')).toBeTruthy();
    expect(within(escalation!).getByText('Escalated to a person')).toBeTruthy();
    expect(within(note!).getByText('Internal note by Sam')).toBeTruthy();
    expect(within(note!).getByText('only operators see this')).toBeTruthy();
    expect(note!.className).toMatch(/note/);
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/conversations/th-1');
    expect(requestedUrl(fetchMock, 1).pathname).toBe('/api/conversations/th-1/replay');
    expect(screen.getByRole('status').textContent).toBe('Escalated: waiting for a person');
  });

  it('shows a version 2 escalation, written on the reply that ends the turn, as the escalation', async () => {
    // The summary is a moment behind (still open): the steps decide.
    mockFetch(
      ...conversation(
        [
          step(1, 'message.received', { content: 'I want a lawyer', client_msg_id: 'c1' }),
          step(2, 'turn.started', { message_seq: 1, agent: 'orders', reason: 'default' }),
          step(3, 'agent.replied', {
            text: 'A person will answer you here.',
            agent: 'orders',
            engine: 'rules',
            outcome: 'escalated',
            latency_ms: 5,
            message_seq: 1,
            escalation: { reason: 'keyword', detail: 'keyword "lawyer"' },
          }),
        ],
        'open',
      ),
    );
    renderPage();
    const [, , reply] = await steps();
    expect(within(reply!).getByText('A person will answer you here.')).toBeTruthy();
    expect(within(reply!).getByText('Escalated to a person')).toBeTruthy();
    expect(within(reply!).getByText('keyword "lawyer"')).toBeTruthy();
    expect(screen.getByRole('status').textContent).toBe('Escalated: waiting for a person');
  });

  it('offers the reply box only to the operator who holds the conversation', async () => {
    mockFetch(...conversation([...escalated, takenBy('op-2', 'Sam')]));
    renderPage();
    await steps();
    expect(screen.getByRole('status').textContent).toBe('Held by Sam');
    expect(screen.queryByLabelText('Reply to the customer')).toBeNull();
    expect(screen.getByText(/Only the operator who holds this conversation can reply/)).toBeTruthy();
    // Notes are for everyone on the desk; handing back is for the holder (or an admin).
    expect(screen.getByLabelText('Internal note (only operators see it)')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Hand back' })).toBeNull();
  });

  it('takes over, and says so in words when someone else was quicker', async () => {
    const fetchMock = mockFetch(...conversation(escalated), {
      status: 409,
      body: { error: { code: 'already_assigned', message: 'Sam holds this conversation' } },
    });
    renderPage();
    await steps();
    fireEvent.click(screen.getByRole('button', { name: 'Take over' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(
      'Another operator holds this conversation already, so you did not take it over. (Sam holds this conversation)',
    );
    expect(requestedUrl(fetchMock, 2).pathname).toBe('/api/conversations/th-1/assign');
    expect(requestMethod(fetchMock, 2)).toBe('POST');
  });

  it('shows the take-over live and then lets the holder reply, resending with the same id after a network error', async () => {
    const fetchMock = mockFetch(
      ...conversation(escalated),
      { status: 202, body: { seq: 5 } },
      ...conversation([...escalated, takenBy('op-1', 'Alex')]),
      { networkError: true },
      { status: 202, body: { seq: 6 } },
    );
    renderPage();
    await steps();
    fireEvent.click(screen.getByRole('button', { name: 'Take over' }));
    const source = FakeEventSource.latest();
    act(() => {
      source.open();
      source.emit(deskEvent(4, 'another-thread', 'message.received', { content: 'not this one' }));
      source.emit(deskEvent(5, THREAD, 'conversation.assigned', { operator_id: 'op-1', name: 'Alex' }));
    });
    expect(await screen.findByText('Taken over by Alex')).toBeTruthy();
    expect(screen.queryByText('not this one')).toBeNull();
    expect(screen.getByRole('status').textContent).toBe('You hold this conversation');
    expect(screen.queryByRole('button', { name: 'Take over' })).toBeNull();

    // The summary is read again 200 ms after the event; after that the calls are the replies.
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(5));
    typeInto('Reply to the customer', 'A new parcel is on its way.');
    fireEvent.click(screen.getByRole('button', { name: 'Send reply' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/Could not reach the server/);
    expect(fetchMock).toHaveBeenCalledTimes(6);
    fireEvent.click(screen.getByRole('button', { name: 'Send reply' }));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(7));
    await vi.waitFor(() =>
      expect((screen.getByLabelText('Reply to the customer') as HTMLTextAreaElement).value).toBe(''),
    );

    const [first, second] = [body(fetchMock, 5), body(fetchMock, 6)] as Array<{ text: string; client_msg_id: string }>;
    expect(requestedUrl(fetchMock, 6).pathname).toBe('/api/conversations/th-1/messages');
    expect(second).toEqual({ text: 'A new parcel is on its way.', client_msg_id: first!.client_msg_id });
    expect(first!.client_msg_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('says why a reply was refused when the conversation was taken away', async () => {
    const fetchMock = mockFetch(...conversation([...escalated, takenBy('op-1', 'Alex')]), {
      status: 409,
      body: { error: { code: 'not_assigned', message: 'you do not hold this conversation' } },
    });
    renderPage();
    await steps();
    typeInto('Reply to the customer', 'Hello?');
    fireEvent.click(screen.getByRole('button', { name: 'Send reply' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(
      'You do not hold this conversation, so nothing was sent. Take it over first.',
    );
    // Kept, to send once it is taken over again.
    expect((screen.getByLabelText('Reply to the customer') as HTMLTextAreaElement).value).toBe('Hello?');
    expect(requestMethod(fetchMock, 2)).toBe('POST');
  });

  it('adds notes, hands back and resolves with the commands of the contract', async () => {
    const fetchMock = mockFetch(
      ...conversation([...escalated, takenBy('op-1', 'Alex')]),
      { status: 202, body: { seq: 7 } },
      { status: 202, body: { seq: 8 } },
      { status: 202, body: { seq: 9 } },
    );
    renderPage();
    await steps();

    typeInto('Internal note (only operators see it)', 'Refund approved by finance');
    fireEvent.click(screen.getByRole('button', { name: 'Add note' }));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(3));
    expect(requestedUrl(fetchMock, 2).pathname).toBe('/api/conversations/th-1/notes');
    expect(body(fetchMock, 2)).toEqual({ text: 'Refund approved by finance' });

    fireEvent.click(screen.getByRole('button', { name: 'Hand back' }));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(4));
    expect(requestedUrl(fetchMock, 3).pathname).toBe('/api/conversations/th-1/release');

    const resolve = screen.getByRole('button', { name: 'Resolve' }) as HTMLButtonElement;
    await vi.waitFor(() => expect(resolve.disabled).toBe(false));
    fireEvent.click(resolve);
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(5));
    expect(requestedUrl(fetchMock, 4).pathname).toBe('/api/conversations/th-1/resolve');
    expect(requestMethod(fetchMock, 4)).toBe('POST');
  });
});
