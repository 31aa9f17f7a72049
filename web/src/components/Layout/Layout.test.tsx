import { act, render, screen, within } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { describe, expect, it } from 'vitest';
import { SessionProvider } from '../../api/session';
import type { Operator } from '../../api/types';
import { deskEvent, FakeEventSource, useFakeEventSource } from '../../test/fakeEventSource';
import { mockFetch, requestedUrl } from '../../test/mockFetch';
import { Layout } from './Layout';

const counts = (unassigned: number) => ({ body: { items: [], counts: { unassigned, mine: 0, all: unassigned } } });

function renderAs(operator?: Operator) {
  render(
    <SessionProvider {...(operator ? { initialOperator: operator } : {})}>
      <MemoryRouter>
        <Layout>
          <p>page</p>
        </Layout>
      </MemoryRouter>
    </SessionProvider>,
  );
  return within(screen.getByRole('navigation', { name: 'Main' }));
}

describe('Layout', () => {
  // Also puts fetch back after each test.
  useFakeEventSource();

  it('shows an agent the inbox with its unassigned count, live, and no admin pages', async () => {
    const fetchMock = mockFetch(counts(2), counts(3));
    const nav = renderAs({ id: 'op-1', name: 'Alex', email: 'alex@example.com', role: 'agent' });
    expect(await nav.findByRole('link', { name: 'Inbox, 2 unassigned' })).toBeTruthy();
    expect(requestedUrl(fetchMock, 0).search).toBe('?view=unassigned');
    expect(nav.queryByRole('link', { name: 'Dead letters' })).toBeNull();
    expect(nav.queryByRole('link', { name: 'Imports' })).toBeNull();
    expect(screen.getByText('Alex')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Sign out' })).toBeTruthy();

    act(() => FakeEventSource.latest().emit(deskEvent(3, 'th-2', 'conversation.escalated', { reason: 'customer_asked' })));
    expect(await nav.findByRole('link', { name: 'Inbox, 3 unassigned' })).toBeTruthy();
  });

  it('asks nothing for a visitor who is not signed in (the customer on the chat)', () => {
    const fetchMock = mockFetch();
    const nav = renderAs();
    expect(nav.getByRole('link', { name: 'Inbox' })).toBeTruthy();
    expect(nav.getByRole('link', { name: 'Dead letters' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Sign in' })).toBeTruthy();
    expect(fetchMock).not.toHaveBeenCalled();
    expect(FakeEventSource.instances).toHaveLength(0);
  });
});
