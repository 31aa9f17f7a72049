import { fireEvent, render, screen } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getOperatorToken } from '../../api/client';
import { SessionProvider } from '../../api/session';
import { mockFetch, requestMethod, requestedUrl } from '../../test/mockFetch';
import { enterApiToken } from '../../test/signIn';
import { SignInPage } from './SignInPage';

const alex = { id: 'op-1', name: 'Alex', email: 'alex@example.com', role: 'agent' };

function renderAt(path: string) {
  render(
    <SessionProvider>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/signin" element={<SignInPage />} />
          <Route path="/inbox" element={<p>the inbox</p>} />
          <Route path="/inbox/:id" element={<p>a conversation</p>} />
        </Routes>
      </MemoryRouter>
    </SessionProvider>,
  );
}

function signInWith(email: string, password: string) {
  fireEvent.change(screen.getByLabelText('Email'), { target: { value: email } });
  fireEvent.change(screen.getByLabelText('Password'), { target: { value: password } });
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
}

describe('Sign-in page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('signs in with email and password, keeps no token, and goes where it was asked', async () => {
    const fetchMock = mockFetch({ body: { token: 'session-secret', operator: alex } });
    renderAt('/signin?next=%2Finbox%2Fth-1');
    expect(screen.getByRole('heading', { name: 'Sign in to the support desk' })).toBeTruthy();

    signInWith('alex@example.com', 'correct horse');
    expect(await screen.findByText('a conversation')).toBeTruthy();

    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/auth/login');
    expect(requestMethod(fetchMock, 0)).toBe('POST');
    expect(JSON.parse(String(fetchMock.mock.calls[0]?.[1]?.body))).toEqual({
      email: 'alex@example.com',
      password: 'correct horse',
    });
    // The session is the HttpOnly cookie: the token in the answer is kept nowhere scripts read.
    expect(getOperatorToken()).toBeNull();
    expect(JSON.stringify({ ...localStorage })).not.toContain('session-secret');
  });

  it('says so when the email and password do not match', async () => {
    mockFetch({ status: 401, body: { error: { code: 'invalid_credentials', message: 'invalid email or password' } } });
    renderAt('/signin');
    signInWith('alex@example.com', 'wrong');
    expect((await screen.findByRole('alert')).textContent).toBe(
      'That email and password do not match an operator. Check them and try again.',
    );
    expect(screen.queryByText('the inbox')).toBeNull();
  });

  it('says when to try again after too many attempts', async () => {
    mockFetch({
      status: 429,
      body: { error: { code: 'rate_limited', message: 'too many sign-in attempts', retry_after_ms: 2500 } },
    });
    renderAt('/signin');
    signInWith('alex@example.com', 'guess');
    expect((await screen.findByRole('alert')).textContent).toBe('Too many attempts. Try again in 3 s.');
  });

  it('still takes the API token, for scripts and admins without an account', async () => {
    const fetchMock = mockFetch();
    renderAt('/signin');
    await enterApiToken('api-secret');
    expect(await screen.findByText('the inbox')).toBeTruthy();
    expect(getOperatorToken()).toBe('api-secret');
    // The token is the bootstrap admin: nothing to ask the server about it.
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
