import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { describe, expect, it, vi } from 'vitest';
import { SessionProvider } from '../../api/session';
import type { InboxItem, InboxPage as InboxAnswer, Operator } from '../../api/types';
import { deskEvent, FakeEventSource, useFakeEventSource } from '../../test/fakeEventSource';
import { mockFetch, requestedUrl } from '../../test/mockFetch';
import { InboxPage } from './InboxPage';

const alex: Operator = { id: 'op-1', name: 'Alex', email: 'alex@example.com', role: 'agent' };

function item(threadId: string, title: string, fields: Partial<InboxItem> = {}): InboxItem {
  return {
    thread_id: threadId,
    title,
    status: 'escalated',
    assignee: null,
    waiting_since: '2026-12-06T09:00:00Z',
    assigned_at: null,
    last_event_at: '2026-12-06T09:05:00Z',
    escalation_reason: 'customer_asked',
    ...fields,
  };
}

function inbox(items: InboxItem[], counts: InboxAnswer['counts']): { body: InboxAnswer } {
  return { body: { items, counts } };
}

function renderAt(path: string) {
  render(
    <SessionProvider initialOperator={alex}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/inbox" element={<InboxPage />} />
        </Routes>
      </MemoryRouter>
    </SessionProvider>,
  );
}

const rows = () => within(screen.getByRole('region', { name: 'Conversations needing a person' })).getAllByRole('row').slice(1);

describe('Inbox page', () => {
  // Also puts fetch back after each test.
  useFakeEventSource();

  it('lists the unassigned conversations, oldest first, with every view’s count', async () => {
    const fetchMock = mockFetch(
      inbox([item('th-1', 'Where is my refund?'), item('th-2', 'Cancel my order')], { unassigned: 2, mine: 1, all: 3 }),
    );
    renderAt('/inbox');

    expect(await screen.findByRole('link', { name: 'Where is my refund?' })).toBeTruthy();
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/inbox');
    expect(requestedUrl(fetchMock, 0).searchParams.get('view')).toBe('unassigned');
    expect(rows().map((row) => row.querySelector('a')?.getAttribute('href'))).toEqual(['/inbox/th-1', '/inbox/th-2']);
    expect(within(rows()[0]!).getByText('Waiting for a person')).toBeTruthy();

    const views = screen.getByRole('group', { name: 'Inbox views' });
    expect(within(views).getByRole('button', { name: 'Unassigned 2' }).getAttribute('aria-pressed')).toBe('true');
    expect(within(views).getByRole('button', { name: 'Mine 1' })).toBeTruthy();
    expect(within(views).getByRole('button', { name: 'All 3' })).toBeTruthy();
  });

  it('switches views, naming who holds each conversation', async () => {
    const fetchMock = mockFetch(
      inbox([], { unassigned: 0, mine: 1, all: 2 }),
      inbox(
        [
          item('th-3', 'Broken parcel', { status: 'assigned', assignee: { id: 'op-1', name: 'Alex' } }),
          item('th-4', 'Wrong size', { status: 'assigned', assignee: { id: 'op-2', name: 'Sam' } }),
        ],
        { unassigned: 0, mine: 1, all: 2 },
      ),
    );
    renderAt('/inbox');
    expect(await screen.findByText('Nobody is waiting for a person.')).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: 'All 2' }));
    expect(await screen.findByRole('link', { name: 'Broken parcel' })).toBeTruthy();
    expect(requestedUrl(fetchMock, 1).searchParams.get('view')).toBe('all');
    expect(within(rows()[0]!).getByText('You')).toBeTruthy();
    expect(within(rows()[1]!).getByText('Sam')).toBeTruthy();
  });

  it('reads the list again when a desk event arrives, without a reload', async () => {
    const fetchMock = mockFetch(
      inbox([item('th-1', 'Where is my refund?')], { unassigned: 1, mine: 0, all: 1 }),
      inbox([item('th-1', 'Where is my refund?'), item('th-9', 'I want a person')], { unassigned: 2, mine: 0, all: 2 }),
    );
    renderAt('/inbox');
    await screen.findByRole('link', { name: 'Where is my refund?' });

    const source = FakeEventSource.latest();
    expect(source.url).toBe('/api/desk/events');
    act(() => {
      source.open();
      // A burst of one turn's events costs one read.
      source.emit(deskEvent(41, 'th-9', 'message.received', { content: 'I want a person' }));
      source.emit(deskEvent(42, 'th-9', 'conversation.escalated', { reason: 'customer_asked' }));
    });

    expect(await screen.findByRole('link', { name: 'I want a person' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Unassigned 2' })).toBeTruthy();
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('opens the feed again after the server closed it, from the last event seen', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      mockFetch(
        inbox([], { unassigned: 0, mine: 0, all: 0 }),
        inbox([], { unassigned: 0, mine: 0, all: 0 }),
        inbox([], { unassigned: 0, mine: 0, all: 0 }),
      );
      renderAt('/inbox');
      await screen.findByText('Nobody is waiting for a person.');
      const first = FakeEventSource.latest();
      act(() => {
        first.open();
        first.emit(deskEvent(7, 'th-1', 'note.added', { text: 'checking', operator_id: 'op-2', name: 'Sam' }));
        first.fail();
      });
      await act(async () => {
        await vi.advanceTimersByTimeAsync(3000);
      });
      expect(FakeEventSource.instances).toHaveLength(2);
      expect(FakeEventSource.latest().url).toBe('/api/desk/events?after_seq=7');
    } finally {
      vi.useRealTimers();
    }
  });

  it('says in words when the role does not allow it (403)', async () => {
    mockFetch({ status: 403, body: { error: { code: 'forbidden', message: 'forbidden' } } });
    renderAt('/inbox');
    expect((await screen.findByRole('alert')).textContent).toMatch('Your operator role does not allow this.');
  });
});
