import { fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConversationSummary } from '../../api/types';
import { mockFetch, requestHeaders, requestedUrl } from '../../test/mockFetch';
import { ConversationsPage } from './ConversationsPage';
import { enterApiToken } from '../../test/signIn';

function conversation(id: string, preview: string): ConversationSummary {
  return {
    thread_id: id,
    status: 'active',
    started_at: '2025-11-25T10:00:00Z',
    last_activity_at: '2025-11-25T10:05:00Z',
    message_count: 3,
    turn_count: 2,
    preview,
  };
}

function renderPage() {
  render(
    <MemoryRouter initialEntries={['/conversations']}>
      <Routes>
        <Route path="/conversations" element={<ConversationsPage />} />
        <Route path="/conversations/:threadId" element={<p>Replay of the conversation</p>} />
      </Routes>
    </MemoryRouter>,
  );
}

describe('Conversations page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('lists conversations and loads the next page with the cursor', async () => {
    const fetchMock = mockFetch(
      { body: { items: [conversation('t1', 'Where is my order?')], next_cursor: 'c2' } },
      { body: { items: [conversation('t2', 'Refund please')], next_cursor: null } },
    );
    renderPage();

    expect(await screen.findByText('Where is my order?')).toBeTruthy();
    const first = requestedUrl(fetchMock, 0);
    expect(first.pathname).toBe('/api/conversations');
    expect(first.searchParams.get('limit')).toBe('20');
    expect(first.searchParams.has('cursor')).toBe(false);

    fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    expect(await screen.findByText('Refund please')).toBeTruthy();
    expect(requestedUrl(fetchMock, 1).searchParams.get('cursor')).toBe('c2');

    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows).toHaveLength(3); // header + two conversations
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
  });

  it('filters by status and asks the server for that status only', async () => {
    const fetchMock = mockFetch(
      { body: { items: [conversation('t1', 'Hello')], next_cursor: 'c2' } },
      { body: { items: [], next_cursor: null } },
    );
    renderPage();
    expect(await screen.findByText('Hello')).toBeTruthy();

    fireEvent.change(screen.getByLabelText('Status'), { target: { value: 'escalated' } });

    expect(await screen.findByText('No conversations with status “Escalated”.')).toBeTruthy();
    expect(screen.queryByText('Hello')).toBeNull();
    const second = requestedUrl(fetchMock, 1);
    expect(second.searchParams.get('status')).toBe('escalated');
    expect(second.searchParams.has('cursor')).toBe(false);
  });

  it('opens the replay when a row is clicked', async () => {
    mockFetch({ body: { items: [conversation('t1', 'Hello')], next_cursor: null } });
    renderPage();
    fireEvent.click(await screen.findByText('2', { selector: 'td' }));
    expect(await screen.findByText('Replay of the conversation')).toBeTruthy();
  });

  it('shows the server’s error message', async () => {
    mockFetch({ status: 503, body: { error: { code: 'unavailable', message: 'The database is not reachable.' } } });
    renderPage();
    expect((await screen.findByRole('alert')).textContent).toMatch('The database is not reachable.');
  });

  it('asks for the operator token on 401 and retries with it', async () => {
    const fetchMock = mockFetch(
      { status: 401, body: { error: { code: 'unauthorized', message: 'missing token' } } },
      { body: { items: [conversation('t1', 'After sign-in')], next_cursor: null } },
    );
    renderPage();

    await enterApiToken('op-secret');

    expect(await screen.findByText('After sign-in')).toBeTruthy();
    expect(requestHeaders(fetchMock, 0).get('Authorization')).toBeNull();
    expect(requestHeaders(fetchMock, 1).get('Authorization')).toBe('Bearer op-secret');
    expect(localStorage.getItem('smart-support.operator-token')).toBe('op-secret');
    expect(screen.queryByLabelText('Operator token')).toBeNull();
  });
});
