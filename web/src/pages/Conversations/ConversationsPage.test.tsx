import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConversationItem, ConversationSummary } from '../../api/types';
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
    tool_call_count: 0,
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

  it('titles each row by the customer’s first message, with the latest text below it', async () => {
    mockFetch({
      body: {
        items: [{ ...conversation('t1', 'Send me your order number.'), title: 'Where is my order?' }],
        next_cursor: null,
      },
    });
    renderPage();
    const link = await screen.findByRole('link', { name: 'Where is my order?' });
    expect(link.getAttribute('title')).toBe('t1');
    expect(screen.getByText('Send me your order number.')).toBeTruthy();
  });

  it('searches for what is typed, with the status, and marks the matches of each snippet', async () => {
    const found: ConversationItem = {
      ...conversation('t1', 'Refunds take 5 days.'),
      title: 'I want my money back',
      rank: 0.1,
      snippet: 'your \uE000refund\uE001 <b>is</b> on its way',
    };
    const fetchMock = mockFetch(
      { body: { items: [conversation('t0', 'Hello')], next_cursor: null } },
      { body: { items: [], next_cursor: null } },
      { body: { items: [found], next_cursor: 'c2' } },
      { body: { items: [], next_cursor: null } },
    );
    renderPage();
    expect(await screen.findByText('Hello')).toBeTruthy();

    fireEvent.change(screen.getByLabelText('Status'), { target: { value: 'resolved' } });
    await screen.findByText('No conversations with status “Resolved”.');
    fireEvent.change(screen.getByRole('searchbox', { name: 'Search conversations' }), {
      target: { value: '  refund  ' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Search' }));

    expect(await screen.findByRole('link', { name: 'I want my money back' })).toBeTruthy();
    const searched = requestedUrl(fetchMock, 2);
    expect(searched.searchParams.get('q')).toBe('refund');
    expect(searched.searchParams.get('status')).toBe('resolved');
    expect(searched.searchParams.has('cursor')).toBe(false);
    const mark = screen.getByText('refund', { selector: 'mark' });
    expect(mark.parentElement?.textContent).toBe('your refund <b>is</b> on its way');
    expect(document.querySelector('b')).toBeNull();

    // The next page keeps the search.
    fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    await waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(4));
    expect(requestedUrl(fetchMock, 3).searchParams.get('q')).toBe('refund');
    expect(requestedUrl(fetchMock, 3).searchParams.get('cursor')).toBe('c2');
  });

  it('says when nothing matches the search', async () => {
    mockFetch({ body: { items: [], next_cursor: null } });
    render(
      <MemoryRouter initialEntries={['/conversations?q=parcel']}>
        <Routes>
          <Route path="/conversations" element={<ConversationsPage />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(await screen.findByText('No conversations match “parcel”.')).toBeTruthy();
    expect((screen.getByRole('searchbox', { name: 'Search conversations' }) as HTMLInputElement).value).toBe('parcel');
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
