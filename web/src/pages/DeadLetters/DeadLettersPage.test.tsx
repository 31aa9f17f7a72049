import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DeadLetter } from '../../api/types';
import { mockFetch, requestHeaders, requestMethod, requestedUrl } from '../../test/mockFetch';
import { DeadLetterPage } from './DeadLetterPage';
import { DeadLettersPage } from './DeadLettersPage';
import { enterApiToken } from '../../test/signIn';

function letter(id: number, fields: Partial<DeadLetter> = {}): DeadLetter {
  return {
    id,
    thread_id: 'c21e9387f0ea424980ca332adb30c5c5',
    source_subject: 'chat.c21e9387f0ea424980ca332adb30c5c5.user',
    source_seq: 41,
    category: 'retryable',
    error: 'engine unavailable: connection refused',
    attempts: 5,
    failed_at: '2026-11-25T15:22:40.31695Z',
    original: {
      content: `Where is my order? (${id})`,
      event_id: 'becdb997-1632-5503-bf13-cca0eb7c0136',
      kind: 'message.received',
      occurred_at: '2026-11-25T15:22:20.302311Z',
      schema_version: 1,
      thread_id: 'c21e9387f0ea424980ca332adb30c5c5',
      turn_id: 'b554e123-7c04-50cb-99cd-7184216766bd',
    },
    headers: {},
    ...fields,
  };
}

const page = (...items: DeadLetter[]) => ({ body: { items, next_cursor: null } });
const unauthorized = { status: 401, body: { error: { code: 'unauthorized', message: 'a valid bearer token is required' } } };

function renderAt(path: string) {
  render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/dead-letters" element={<DeadLettersPage />} />
        <Route path="/dead-letters/:id" element={<DeadLetterPage />} />
        <Route path="/conversations/:threadId" element={<p>Replay page</p>} />
      </Routes>
    </MemoryRouter>,
  );
}

async function rowOf(id: number): Promise<HTMLElement> {
  const link = await screen.findByRole('link', { name: `Dead letter ${id}` });
  const row = link.closest('tr');
  if (!row) throw new Error('no row');
  return row;
}

describe('Dead letters page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('lists the dead letters with their error, category, attempts and message', async () => {
    const fetchMock = mockFetch(page(letter(7), letter(8, { category: 'fatal', original: 'not json at all' })));
    renderAt('/dead-letters');

    const row = await rowOf(7);
    expect(within(row).getByText('engine unavailable: connection refused')).toBeTruthy();
    expect(within(row).getByText('Retryable (retries used up)')).toBeTruthy();
    expect(within(row).getByText('5')).toBeTruthy();
    expect(within(row).getByText('Where is my order? (7)')).toBeTruthy();
    expect(within(await rowOf(8)).getByText('not json at all')).toBeTruthy();

    const url = requestedUrl(fetchMock, 0);
    expect(url.pathname).toBe('/api/dead-letters');
    expect(url.searchParams.get('limit')).toBe('50');
  });

  it('says so when there are none', async () => {
    mockFetch(page());
    renderAt('/dead-letters');
    expect(await screen.findByText('No dead letters. Every message was answered.')).toBeTruthy();
  });

  it('asks the server for the filters applied', async () => {
    const fetchMock = mockFetch(page(letter(7)), page());
    renderAt('/dead-letters');
    await rowOf(7);

    fireEvent.change(screen.getByLabelText('Category'), { target: { value: 'fatal' } });
    fireEvent.change(screen.getByLabelText('Conversation id'), { target: { value: ' abc ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply filters' }));

    expect(await screen.findByText('No dead letters match these filters.')).toBeTruthy();
    const url = requestedUrl(fetchMock, 1);
    expect(url.searchParams.get('category')).toBe('fatal');
    expect(url.searchParams.get('thread_id')).toBe('abc');
  });

  it('redrives after the operator confirms, says so, and reloads the list', async () => {
    const fetchMock = mockFetch(page(letter(7), letter(8)), { body: { id: 7, seq: 1043 } }, page(letter(8)));
    renderAt('/dead-letters');
    const trigger = within(await rowOf(7)).getByRole('button', { name: 'Redrive dead letter 7' });
    fireEvent.click(trigger);

    const dialog = screen.getByRole('dialog', { name: 'Redrive dead letter 7?' });
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(fetchMock).toHaveBeenCalledTimes(1);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Redrive' }));

    expect((await screen.findByText(/Dead letter 7 was redriven/)).textContent).toMatch('#1043');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(requestMethod(fetchMock, 1)).toBe('POST');
    expect(requestedUrl(fetchMock, 1).pathname).toBe('/api/dead-letters/7/redrive');
    expect(await screen.findByText('Where is my order? (8)')).toBeTruthy();
    expect(screen.queryByText('Where is my order? (7)')).toBeNull();
    expect(requestMethod(fetchMock, 2)).toBe('GET');
  });

  it('discards after the operator confirms', async () => {
    const fetchMock = mockFetch(page(letter(7)), { status: 204 }, page());
    renderAt('/dead-letters');
    fireEvent.click(within(await rowOf(7)).getByRole('button', { name: 'Discard dead letter 7' }));

    const dialog = screen.getByRole('dialog', { name: 'Discard dead letter 7?' });
    expect(within(dialog).getByText(/cannot be undone/)).toBeTruthy();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Discard' }));

    expect(await screen.findByText('Dead letter 7 was discarded.')).toBeTruthy();
    expect(requestMethod(fetchMock, 1)).toBe('DELETE');
    expect(requestedUrl(fetchMock, 1).pathname).toBe('/api/dead-letters/7');
    expect(await screen.findByText('No dead letters. Every message was answered.')).toBeTruthy();
  });

  it('does nothing when the operator cancels, with Escape or the Cancel button', async () => {
    const fetchMock = mockFetch(page(letter(7)));
    renderAt('/dead-letters');
    const discard = within(await rowOf(7)).getByRole('button', { name: 'Discard dead letter 7' });

    discard.focus();
    fireEvent.click(discard);
    fireEvent.keyDown(screen.getByRole('dialog'), { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(discard);

    fireEvent.click(within(await rowOf(7)).getByRole('button', { name: 'Redrive dead letter 7' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).toBeNull();

    await act(async () => {});
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(screen.getByText('Where is my order? (7)')).toBeTruthy();
  });

  it('redrives every matching dead letter after confirming the count the server gave', async () => {
    const fetchMock = mockFetch(
      page(letter(7), letter(8)),
      { body: { would_redrive: 2 } },
      { body: { redriven: 1, failed: [{ id: 8, code: 'not_redrivable', message: 'not an event' }] } },
      page(letter(8)),
    );
    renderAt('/dead-letters?category=retryable');
    await rowOf(7);

    fireEvent.click(screen.getByRole('button', { name: 'Redrive all matching…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Redrive 2 dead letters?' });
    expect(requestMethod(fetchMock, 1)).toBe('POST');
    expect(requestedUrl(fetchMock, 1).pathname).toBe('/api/dead-letters/redrive');
    expect(JSON.parse(String(fetchMock.mock.calls[1]?.[1]?.body))).toEqual({ category: 'retryable', dry_run: true });

    fireEvent.click(within(dialog).getByRole('button', { name: 'Redrive 2' }));
    expect(await screen.findByText('Redrove 1 dead letter. 1 could not be redriven: #8 (not redrivable).')).toBeTruthy();
    expect(JSON.parse(String(fetchMock.mock.calls[2]?.[1]?.body))).toEqual({ category: 'retryable', expected_count: 2 });
    await screen.findByText('Where is my order? (8)');
    expect(screen.queryByText('Where is my order? (7)')).toBeNull();
  });

  it('explains in plain words why a redrive was refused', async () => {
    mockFetch(page(letter(7)), {
      status: 409,
      body: { error: { code: 'not_redrivable', message: 'cannot be redriven: not a user message; discard it instead' } },
    });
    renderAt('/dead-letters');
    fireEvent.click(within(await rowOf(7)).getByRole('button', { name: 'Redrive dead letter 7' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Redrive' }));

    expect((await screen.findByRole('alert')).textContent).toMatch(
      'Dead letter 7 cannot be redriven: its original is not a user message (not a user message). Discard it instead.',
    );
  });

  it('asks for the operator token on 401, for the list and for an action', async () => {
    const fetchMock = mockFetch(unauthorized, page(letter(7)), unauthorized, { body: { id: 7, seq: 9 } }, page());
    renderAt('/dead-letters');

    await enterApiToken('op-secret');
    await rowOf(7);
    expect(requestHeaders(fetchMock, 1).get('Authorization')).toBe('Bearer op-secret');

    // The token is withdrawn on the server: the action is refused and the prompt comes back.
    fireEvent.click(within(await rowOf(7)).getByRole('button', { name: 'Redrive dead letter 7' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Redrive' }));
    expect(await screen.findByText('That token was not accepted. Check it and try again.')).toBeTruthy();
    await enterApiToken('new-secret');

    expect(await screen.findByText(/Dead letter 7 was redriven/)).toBeTruthy();
    expect(requestMethod(fetchMock, 3)).toBe('POST');
    expect(requestHeaders(fetchMock, 3).get('Authorization')).toBe('Bearer new-secret');
  });
});

describe('Dead letter detail page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('shows the error, category, attempts, original message and a link to the conversation', async () => {
    const fetchMock = mockFetch({ body: letter(7, { headers: { 'Smart-Support-Previous-Seq': '12' } }) });
    renderAt('/dead-letters/7');

    expect(await screen.findByRole('heading', { name: 'Dead letter 7' })).toBeTruthy();
    expect(await screen.findByText('engine unavailable: connection refused')).toBeTruthy();
    expect(screen.getByText('Retryable (retries used up)')).toBeTruthy();
    expect(screen.getByText('5')).toBeTruthy();
    expect(screen.getByText('Where is my order? (7)')).toBeTruthy();
    const thread = screen.getByRole('link', { name: /Replay of conversation c21e9387/ });
    expect(thread.getAttribute('href')).toBe('/conversations/c21e9387f0ea424980ca332adb30c5c5');
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/dead-letters/7');
  });

  it('goes back to the list after a redrive and says what happened there', async () => {
    mockFetch({ body: letter(7) }, { body: { id: 7, seq: 1043 } }, page());
    renderAt('/dead-letters/7');
    fireEvent.click(await screen.findByRole('button', { name: 'Redrive dead letter 7' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Redrive' }));

    expect(await screen.findByRole('heading', { name: 'Dead letters' })).toBeTruthy();
    expect(screen.getByText(/Dead letter 7 was redriven/)).toBeTruthy();
  });

  it('shows the server’s answer for an id that is not there', async () => {
    mockFetch({ status: 404, body: { error: { code: 'not_found', message: 'no dead letter 99' } } });
    renderAt('/dead-letters/99');
    expect((await screen.findByRole('alert')).textContent).toMatch('no dead letter 99');
    expect(screen.queryByRole('button', { name: /Redrive/ })).toBeNull();
  });
});
