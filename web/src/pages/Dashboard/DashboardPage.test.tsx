import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { busyReport, quietReport, summary } from '../../test/analyticsFixture';
import { mockFetch, requestHeaders, requestedUrl } from '../../test/mockFetch';
import { DashboardPage } from './DashboardPage';
import { enterApiToken } from '../../test/signIn';

// Chart.js draws on a canvas, which jsdom does not have: the charts become a plain labelled
// canvas here, so the tests see what the page hands to them without any drawing.
vi.mock('react-chartjs-2', async () => {
  const { createElement } = await import('react');
  const Stub = (props: { 'aria-label'?: string; data: { datasets: Array<{ label: string; data: unknown[] }> } }) =>
    createElement('canvas', {
      role: 'img',
      'aria-label': props['aria-label'],
      'data-series': props.data.datasets.map((d) => `${d.label}=${d.data.join(',')}`).join(';'),
    });
  return { Line: Stub, Bar: Stub };
});

function renderDashboard(path = '/dashboard') {
  render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/dashboard" element={<DashboardPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

/** The value shown on the card named `name`. */
function card(name: string): string {
  const region = screen.getByRole('region', { name });
  return region.querySelector('[data-value]')?.textContent ?? '';
}

describe('Dashboard page', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('shows the totals, the agents and the series of the report', async () => {
    const fetchMock = mockFetch({ body: busyReport() });
    renderDashboard();

    await screen.findByRole('region', { name: 'Conversations' });
    expect(card('Conversations')).toBe('3');
    expect(card('Messages')).toBe('5');
    expect(card('Resolution rate')).toBe('33.3%');
    expect(card('Escalation rate')).toBe('33.3%');
    expect(card('Tool error rate')).toBe('50%');
    expect(card('Reply latency p50')).toBe('100 ms');
    expect(card('Reply latency p95')).toBe('2.5 s');
    expect(within(screen.getByRole('region', { name: 'Tool error rate' })).getByText('1 of 2 tool calls failed')).toBeTruthy();

    const rows = within(screen.getByRole('region', { name: 'Agent numbers' })).getAllByRole('row');
    expect(rows.map((row) => within(row).queryByRole('rowheader')?.textContent ?? null)).toEqual([
      null,
      'billing',
      'orders',
    ]);

    const billing = within(screen.getByRole('region', { name: 'Agent numbers' })).getByRole('row', { name: /billing/ });
    const cells = within(billing).getAllByRole('cell');
    expect(cells.find((cell) => cell.getAttribute('data-label') === 'Prompt tokens')?.textContent).toBe('2,700');
    expect(cells.find((cell) => cell.getAttribute('data-label') === 'Completion tokens')?.textContent).toBe('100');
    const tokens = screen.getByRole('img', { name: /^Bar chart of the tokens the model read/ });
    expect(tokens.getAttribute('data-series')).toBe('Prompt tokens=1200,1500;Completion tokens=80,20');
    expect(tokens.getAttribute('aria-label')).toContain('In total 2,700 prompt and 100 completion tokens.');

    const traffic = screen.getByRole('img', { name: /^Line chart of conversations, messages and replies per hour/ });
    expect(traffic.getAttribute('data-series')).toBe('Conversations=2,1;Messages=3,2;Replies=3,1');
    expect(screen.queryByText(/No conversations in this range yet/)).toBeNull();

    const url = requestedUrl(fetchMock, 0);
    expect(url.pathname).toBe('/api/analytics');
    expect(url.searchParams.get('range')).toBe('24h');
  });

  it('shows the desk: handoffs, the wait to the first human reply and each operator', async () => {
    mockFetch({ body: busyReport() });
    renderDashboard();

    const desk = await screen.findByRole('region', { name: 'People at the desk' });
    expect(desk.textContent).toContain('2 handoffs to a person');
    expect(desk.textContent).toContain('p50 45 s, p95 2 min 30 s');
    const rows = within(within(desk).getByRole('region', { name: 'Operator numbers' })).getAllByRole('row');
    expect(rows.map((row) => Array.from(row.children).map((cell) => cell.textContent))).toEqual([
      ['Operator', 'Taken over', 'Replies', 'Resolved'],
      ['Anna', '2', '3', '1'],
    ]);
  });

  it('says plainly when the range had no traffic, without NaN or infinity', async () => {
    mockFetch({ body: quietReport() });
    renderDashboard();

    const notice = await screen.findByText(/No conversations in this range yet/);
    expect(notice.closest('[role="status"]')).not.toBeNull();
    expect(card('Conversations')).toBe('0');
    expect(card('Resolution rate')).toBe('—');
    expect(card('Tool error rate')).toBe('—');
    expect(card('Reply latency p95')).toBe('—');
    expect(screen.getByText('No agent has answered in this range yet.')).toBeTruthy();
    expect(screen.queryByRole('img')).toBeNull();
    expect(document.body.textContent).not.toMatch(/NaN|Infinity|∞|undefined/);
  });

  it('fetches the report again for the range picked, and marks that range pressed', async () => {
    const fetchMock = mockFetch(
      { body: busyReport() },
      { body: { ...quietReport(), bucket: 'day', totals: summary({ conversations: 40, messages: 90 }) } },
    );
    renderDashboard();
    await screen.findByRole('region', { name: 'Conversations' });

    const group = screen.getByRole('group', { name: 'Time range' });
    expect(within(group).getByRole('button', { name: 'Last 24 hours' }).getAttribute('aria-pressed')).toBe('true');

    fireEvent.click(within(group).getByRole('button', { name: 'Last 7 days' }));

    await screen.findByText('40');
    expect(card('Messages')).toBe('90');
    expect(requestedUrl(fetchMock, 1).searchParams.get('range')).toBe('7d');
    expect(within(group).getByRole('button', { name: 'Last 7 days' }).getAttribute('aria-pressed')).toBe('true');
    expect(within(group).getByRole('button', { name: 'Last 24 hours' }).getAttribute('aria-pressed')).toBe('false');
  });

  it('refreshes by itself every 10 seconds and on the Refresh button', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const fetchMock = mockFetch(
      { body: busyReport() },
      { body: { ...busyReport(), totals: summary({ conversations: 4 }) } },
      { body: { ...busyReport(), totals: summary({ conversations: 5 }) } },
    );
    renderDashboard();
    await screen.findByRole('region', { name: 'Conversations' });
    expect(card('Conversations')).toBe('3');

    act(() => vi.advanceTimersByTime(10_000));
    await screen.findByText('4');
    expect(fetchMock).toHaveBeenCalledTimes(2);

    fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
    await screen.findByText('5');

    // Turned off: no more requests.
    fireEvent.click(screen.getByRole('checkbox', { name: 'Refresh every 10 seconds' }));
    act(() => vi.advanceTimersByTime(30_000));
    expect(fetchMock).toHaveBeenCalledTimes(3);
  });

  it('asks for the operator token on 401 and shows the report once given', async () => {
    const fetchMock = mockFetch(
      { status: 401, body: { error: { code: 'unauthorized', message: 'a valid bearer token is required' } } },
      { body: busyReport() },
    );
    renderDashboard('/dashboard?range=30d');

    await enterApiToken('op-secret');

    await screen.findByRole('region', { name: 'Conversations' });
    expect(requestedUrl(fetchMock, 1).searchParams.get('range')).toBe('30d');
    expect(requestHeaders(fetchMock, 1).get('Authorization')).toBe('Bearer op-secret');
  });
});
