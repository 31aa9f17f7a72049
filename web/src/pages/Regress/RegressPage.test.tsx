import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RegressChangedTurn, RegressRun } from '../../api/types';
import { FORBIDDEN_TEXT } from '../../api/useOperatorRequest';
import { mockFetch, requestMethod, requestedUrl } from '../../test/mockFetch';
import { RegressPage } from './RegressPage';

const ID = '5d0c1f0a-7d0b-4f5e-9a0c-1b2c3d4e5f60';
const CONFIG = 'default_agent: general\nagents: []\n';

const CHANGED: RegressChangedTurn = {
  thread_id: '0f5d3c2e1a',
  turn_id: 'b554e123-7c04-50cb-99cd-7184216766bd',
  seq: 212,
  occurred_at: '2026-11-27T09:12:44.1Z',
  message: 'Where is my order ORD-1004?',
  changes: ['reply'],
  recorded: {
    agent: 'orders',
    tool_calls: [{ tool: 'getOrder', params: { order_id: 'ORD-1004' } }],
    confirmation: null,
    escalation: null,
    reply: 'Order ORD-1004 is delivered (total $24.99).',
  },
  replayed: {
    agent: 'orders',
    tool_calls: [{ tool: 'getOrder', params: { order_id: 'ORD-1004' } }, { tool: 'cancelOrder', params: { order_id: 'ORD-1004' }, new: true }],
    confirmation: null,
    escalation: null,
    reply: 'Your order ORD-1004 is delivered.',
  },
};

function run(fields: Partial<RegressRun> = {}): RegressRun {
  return {
    id: ID,
    status: 'done',
    config: 'new.yaml',
    since: '7d',
    thread_ids: [],
    limit: null,
    progress: { events_total: 400, events_read: 400, turns_replayed: 61 },
    engine: 'rules',
    summary: {
      replayed: 61,
      unchanged: 60,
      changed: 1,
      by_kind: { agent: 0, confirmation: 0, escalation: 0, reply: 1, tool_calls: 0 },
      new_tool_calls: 1,
      errors: 0,
      skipped: { held: 9, failed: 1, unfinished: 0, unreadable: 0 },
      seconds: 0.05,
      turns_per_second: 1220,
    },
    changed: [CHANGED],
    changed_truncated: false,
    errors: [],
    error: null,
    created_at: '2026-12-07T03:00:00Z',
    finished_at: '2026-12-07T03:00:01Z',
    ...fields,
  };
}

const running = {
  body: run({
    status: 'running',
    engine: null,
    summary: null,
    changed: [],
    finished_at: null,
    progress: { events_total: 400, events_read: 120, turns_replayed: 17 },
  }),
};

function renderAt(path: string) {
  render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/regress" element={<RegressPage />} />
        <Route path="/regress/:id" element={<RegressPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

/** Lets the fetch mock's promises (and the state updates after them) settle. */
async function flush() {
  await act(async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  });
}

describe('Regress page', () => {
  beforeEach(() => vi.useFakeTimers({ shouldAdvanceTime: true }));
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('uploads a config with a selection, shows the progress while it runs, then the summary', async () => {
    const fetchMock = mockFetch({ status: 202, body: { id: ID, status: 'running' } }, running, { body: run() });
    renderAt('/regress');

    const file = new File([CONFIG], 'new agents.yaml', { type: 'application/yaml' });
    fireEvent.change(screen.getByLabelText('Agents config file (YAML)'), { target: { files: [file] } });
    expect(await screen.findByText(/Read new agents\.yaml/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Turns since'), { target: { value: '7d' } });
    fireEvent.change(screen.getByLabelText('Only these threads'), { target: { value: 't-1, t-2' } });
    fireEvent.change(screen.getByLabelText('At most (the last N turns)'), { target: { value: '500' } });
    fireEvent.click(screen.getByRole('button', { name: 'Run' }));
    await flush();

    expect(requestMethod(fetchMock, 0)).toBe('POST');
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/regress');
    expect(JSON.parse(String(fetchMock.mock.calls[0]?.[1]?.body))).toEqual({
      config: CONFIG,
      name: 'new_agents.yaml',
      since: '7d',
      thread_ids: ['t-1', 't-2'],
      limit: 500,
    });

    // Running: the progress, then the next look a second later.
    expect(requestedUrl(fetchMock, 1).pathname).toBe(`/api/regress/${ID}`);
    expect(screen.getByText(/120 of 400 events read, 17 turns replayed/)).toBeTruthy();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    await flush();

    const summary = screen.getByLabelText('Summary');
    expect(within(summary).getByText('Turns replayed').nextSibling?.textContent).toBe('61');
    expect(within(summary).getByText('Changed').nextSibling?.textContent).toBe('1');
    expect(screen.queryByText(/events read/)).toBeNull();
    expect(screen.getByText(/9 held by a person/)).toBeTruthy();
    expect(fetchMock).toHaveBeenCalledTimes(3);
  });

  it('opens a changed turn with the recorded and the new turn side by side', async () => {
    mockFetch({ body: run() });
    renderAt(`/regress/${ID}`);
    await flush();

    const list = screen.getByRole('region', { name: 'Changed turns' });
    expect(within(list).getByText('Where is my order ORD-1004?')).toBeTruthy();
    fireEvent.click(within(list).getByRole('button', { name: 'Compare the turn at seq 212' }));

    const table = screen.getByRole('region', { name: 'Recorded and replayed turn' });
    const reply = within(table).getByRole('rowheader', { name: /reply/ }).closest('tr') as HTMLElement;
    expect(reply.textContent).toContain('(changed)');
    expect(within(reply).getByText('Order ORD-1004 is delivered (total $24.99).')).toBeTruthy();
    expect(within(reply).getByText('Your order ORD-1004 is delivered.')).toBeTruthy();
    const calls = within(table).getByRole('rowheader', { name: /tool calls/ }).closest('tr') as HTMLElement;
    expect(calls.textContent).not.toContain('(changed)');
    expect(calls.textContent).toContain('cancelOrder {"order_id":"ORD-1004"} (new: not called)');

    fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    expect(screen.queryByRole('region', { name: 'Recorded and replayed turn' })).toBeNull();
  });

  it('says so when nothing would change', async () => {
    const same = run();
    mockFetch({
      body: { ...same, changed: [], summary: { ...same.summary!, unchanged: 61, changed: 0, by_kind: { ...same.summary!.by_kind, reply: 0 } } },
    });
    renderAt(`/regress/${ID}`);
    await flush();
    expect(screen.getByText('No turn would be answered differently with this config.')).toBeTruthy();
    expect(screen.queryByRole('region', { name: 'Changed turns' })).toBeNull();
  });

  it('shows a config that does not load with its file, line and reason', async () => {
    mockFetch({
      body: run({
        status: 'failed',
        summary: null,
        changed: [],
        engine: null,
        error: { code: 'invalid_config', message: 'new.yaml:8: default_agent "nobody" is not one of the agents' },
      }),
    });
    renderAt(`/regress/${ID}`);
    await flush();
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('The config does not load');
    expect(alert.textContent).toContain('new.yaml:8: default_agent "nobody" is not one of the agents');
  });

  it('tells an agent that regress is for admins', async () => {
    mockFetch({ status: 403, body: { error: { code: 'forbidden', message: 'this needs the admin role' } } });
    renderAt(`/regress/${ID}`);
    await flush();
    expect(screen.getByRole('alert').textContent).toContain(FORBIDDEN_TEXT);
  });
});
