import { fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, requestedUrl, requestMethod } from '../../test/mockFetch';
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
    expect(within(items[1]!).getByText('Tool called: get_order')).toBeTruthy();
    expect(within(items[2]!).getByText('Order 42 ships today.')).toBeTruthy();
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/conversations/th%2F1/replay');
  });

  it('expands a tool call to its parameters and result, with latencies and timestamps', async () => {
    mockFetch({
      body: {
        thread_id: 't',
        steps: [
          step(1, 'tool.called', { call_id: 'tool-1', tool: 'getOrder', params: { order_id: 'ORD-1002' }, permission: 'read' }),
          {
            ...step(2, 'tool.succeeded', { call_id: 'tool-1', tool: 'getOrder', status: 200, latency_ms: 14, attempts: 1 }),
            occurred_at: '2025-11-25T10:00:00.014Z',
            result: { order_id: 'ORD-1002', status: 'shipped' },
          },
          step(3, 'turn.completed', { outcome: 'replied', latency_ms: 21 }),
          step(4, 'turn.failed', { error: 'engine down', category: 'retryable', attempts: 5, dead_letter_id: 7 }),
        ],
      },
    });
    renderAt('/conversations/t');
    const [called, succeeded, completed, failed] = within(
      await screen.findByRole('list', { name: 'Conversation steps' }),
    ).getAllByRole('listitem');

    const params = within(called!).getByRole('button', { name: 'Parameters of getOrder' });
    expect(params.getAttribute('aria-expanded')).toBe('false');
    expect(within(called!).queryByText(/"ORD-1002"/)).toBeNull();
    fireEvent.click(params);
    expect(params.getAttribute('aria-expanded')).toBe('true');
    expect(within(called!).getByText(/"order_id": "ORD-1002"/)).toBeTruthy();

    expect(within(succeeded!).getByText('HTTP 200')).toBeTruthy();
    expect(within(succeeded!).getByText('took 14 ms')).toBeTruthy();
    expect(within(succeeded!).getByText('+14 ms')).toBeTruthy();
    fireEvent.click(within(succeeded!).getByRole('button', { name: 'Result of getOrder' }));
    expect(within(succeeded!).getByText(/"status": "shipped"/)).toBeTruthy();
    expect(succeeded!.querySelector('time')?.getAttribute('datetime')).toBe('2025-11-25T10:00:00.014Z');

    expect(within(completed!).getByText('reply after 21 ms')).toBeTruthy();
    expect(within(failed!).getByText('engine down')).toBeTruthy();
    expect(within(failed!).getByRole('link', { name: 'dead letter 7' }).getAttribute('href')).toBe('/dead-letters/7');
  });

  it('shows a version 2 turn’s routing, call arguments and end on the steps that now carry them', async () => {
    // Version 2 writes no agent.routed, no tool.called before a read call, no confirmation.requested,
    // conversation.escalated or turn.completed: their facts are on the steps below.
    const pending = { agent: 'orders', tool: 'cancelOrder', params: { order_id: 'ORD-1001' } };
    mockFetch({
      body: {
        thread_id: 't',
        steps: [
          step(1, 'turn.started', { message_seq: 7, agent: 'orders', reason: 'keyword "order"' }),
          step(2, 'tool.succeeded', {
            call_id: 'tool-1',
            tool: 'getOrder',
            params: { order_id: 'ORD-1002' },
            permission: 'read',
            status: 200,
            result: { status: 'shipped' },
            latency_ms: 14,
            attempts: 1,
          }),
          step(3, 'tool.failed', {
            call_id: 'tool-2',
            tool: 'getOrder',
            params: { order_id: 'ORD-9' },
            permission: 'read',
            category: 'not_retryable',
            error: 'HTTP 404',
            latency_ms: 3,
            attempts: 1,
          }),
          step(4, 'agent.replied', { text: 'Order ORD-1002 is shipped.', agent: 'orders', engine: 'rules', outcome: 'replied', latency_ms: 21, message_seq: 7 }),
          step(5, 'agent.replied', { text: 'Shall I cancel order ORD-1001?', agent: 'orders', engine: 'rules', outcome: 'awaiting_confirmation', latency_ms: 2, message_seq: 9, pending }),
          step(6, 'agent.replied', {
            text: 'A person will answer you here.',
            agent: 'orders',
            engine: 'rules',
            outcome: 'escalated',
            latency_ms: 5,
            message_seq: 11,
            escalation: { reason: 'keyword', detail: 'keyword "lawyer"' },
          }),
        ],
      },
    });
    renderAt('/conversations/t');
    const [started, succeeded, failed, replied, asked, escalated] = within(
      await screen.findByRole('list', { name: 'Conversation steps' }),
    ).getAllByRole('listitem');

    expect(within(started!).getByText('Turn started: routed to orders')).toBeTruthy();
    expect(within(started!).getByText('keyword "order"')).toBeTruthy();
    expect(within(started!).getByText('answers #7')).toBeTruthy();

    expect(within(succeeded!).getByText('read')).toBeTruthy();
    fireEvent.click(within(succeeded!).getByRole('button', { name: 'Parameters of getOrder' }));
    expect(within(succeeded!).getByText(/"order_id": "ORD-1002"/)).toBeTruthy();
    fireEvent.click(within(succeeded!).getByRole('button', { name: 'Result of getOrder' }));
    expect(within(succeeded!).getByText(/"status": "shipped"/)).toBeTruthy();

    expect(within(failed!).getByText('HTTP 404')).toBeTruthy();
    expect(within(failed!).getByText('read')).toBeTruthy();
    fireEvent.click(within(failed!).getByRole('button', { name: 'Parameters of getOrder' }));
    expect(within(failed!).getByText(/"order_id": "ORD-9"/)).toBeTruthy();

    expect(within(replied!).getByText('replied')).toBeTruthy();
    expect(within(replied!).getByText('reply after 21 ms')).toBeTruthy();

    expect(within(asked!).getByText('Shall I cancel order ORD-1001?')).toBeTruthy();
    expect(within(asked!).getByText('Confirmation requested: cancelOrder')).toBeTruthy();
    expect(within(asked!).getByText('awaiting_confirmation')).toBeTruthy();
    fireEvent.click(within(asked!).getByRole('button', { name: 'Write waiting for confirmation' }));
    expect(within(asked!).getByText(/"tool": "cancelOrder"/)).toBeTruthy();

    expect(within(escalated!).getByText('A person will answer you here.')).toBeTruthy();
    const handOver = within(escalated!).getByText('Escalated to a person').parentElement!;
    expect(handOver.className).toMatch(/escalation/);
    expect(within(handOver).getByText('keyword "lawyer"')).toBeTruthy();
    expect(within(handOver).getByText('keyword')).toBeTruthy();
    expect(within(escalated!).getByText('escalated')).toBeTruthy();
    expect(within(escalated!).getByText('reply after 5 ms')).toBeTruthy();
  });

  it('shows the server’s error message', async () => {
    mockFetch({ status: 404, body: { error: { code: 'not_found', message: 'No such conversation.' } } });
    renderAt('/conversations/nope');
    expect((await screen.findByRole('alert')).textContent).toMatch('No such conversation.');
  });

  it('erases the conversation after a confirmation and shows what was deleted instead of the steps', async () => {
    const fetchMock = mockFetch(
      { body: { thread_id: 't-9', steps: [step(1, 'message.received', { content: 'Forget me' })] } },
      { status: 202, body: { thread_id: 't-9', seq: 7, events: 4, dead_letters: 1 } },
    );
    renderAt('/conversations/t-9');
    await screen.findByText('Forget me');

    fireEvent.click(screen.getByRole('button', { name: 'Erase' }));
    const dialog = screen.getByRole('dialog', { name: 'Erase this conversation?' });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Erase' }));

    expect(await screen.findByText(/4 events and 1 dead letters deleted/)).toBeTruthy();
    expect(requestMethod(fetchMock, 1)).toBe('DELETE');
    expect(requestedUrl(fetchMock, 1).pathname).toBe('/api/conversations/t-9');
    expect(screen.queryByText('Forget me')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Erase' })).toBeNull();
  });
});
