import { render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, requestedUrl } from '../../test/mockFetch';
import { ReplayPage } from './ReplayPage';

function renderAt(path: string) {
  render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/conversations/:threadId" element={<ReplayPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

const step = (seq: number, kind: string, fields: Record<string, unknown>) => ({
  seq,
  kind,
  occurred_at: '2025-11-25T10:00:00Z',
  turn_id: 'turn-1',
  event_id: `e${seq}`,
  ...fields,
});

describe('Replay page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('shows every step in order as a timeline', async () => {
    const fetchMock = mockFetch({
      body: {
        thread_id: 'th/1',
        steps: [
          step(1, 'message.received', { content: 'Where is order 42?' }),
          step(2, 'tool.called', { tool: 'get_order', params: { id: 42 } }),
          step(3, 'agent.replied', { text: 'Order 42 ships today.' }),
        ],
      },
    });
    renderAt('/conversations/th%2F1');

    const timeline = await screen.findByRole('list', { name: 'Conversation steps' });
    const items = within(timeline).getAllByRole('listitem');
    expect(items.map((item) => item.querySelector('code')?.textContent)).toEqual([
      'message.received',
      'tool.called',
      'agent.replied',
    ]);
    expect(within(items[0]!).getByText('Where is order 42?')).toBeTruthy();
    expect(within(items[1]!).getByText(/"get_order"/)).toBeTruthy();
    expect(within(items[2]!).getByText('Order 42 ships today.')).toBeTruthy();
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/conversations/th%2F1/replay');
  });

  it('shows the server’s error message', async () => {
    mockFetch({ status: 404, body: { error: { code: 'not_found', message: 'No such conversation.' } } });
    renderAt('/conversations/nope');
    expect((await screen.findByRole('alert')).textContent).toMatch('No such conversation.');
  });
});
