import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError, getMe, getOperatorToken, login, logout, setOperatorToken } from './client';
import type { Operator, OperatorRole } from './types';

/**
 * Who uses the operator pages. Two ways in:
 * - email and password (`POST /api/auth/login`): the server sets an HttpOnly session cookie, which
 *   fetch and EventSource send by themselves. The token in the answer is not kept anywhere page
 *   scripts could read it. Only the operator's public profile (id, name, role; no token) is kept in
 *   `localStorage` as a hint that someone is signed in, so the app asks `GET /api/me` on start
 *   only then, and a customer on the chat never gets a 401 logged.
 * - the static API token (`TokenPrompt`), as before: kept in `localStorage` and sent as
 *   `Authorization: Bearer …` (scripts, CI, an admin without an account).
 */
export interface Session {
  /** The signed-in operator; `null` for the API token (it is no operator). */
  operator: Operator | null;
  /** An API token is stored and sent with every request. */
  viaToken: boolean;
  signedIn: boolean;
  /** `null` when unknown: then nothing is hidden, and the server decides. The API token is the
   *  bootstrap admin (shared/API.md), so `/api/me` is not asked about it. */
  role: OperatorRole | null;
  signIn: (email: string, password: string) => Promise<Operator>;
  signInWithToken: (token: string) => void;
  signOut: () => Promise<void>;
  /** A request was answered 401: the session is over. */
  expired: () => void;
}

const PROFILE_KEY = 'smart-support.operator';

function isOperator(value: unknown): value is Operator {
  if (typeof value !== 'object' || value === null) return false;
  const { id, name, role } = value as Partial<Record<keyof Operator, unknown>>;
  return typeof id === 'string' && typeof name === 'string' && (role === 'agent' || role === 'admin');
}

function storedProfile(): Operator | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(PROFILE_KEY) ?? 'null');
    return isOperator(value) ? value : null;
  } catch {
    return null;
  }
}

function storeProfile(operator: Operator | null): void {
  try {
    if (operator) localStorage.setItem(PROFILE_KEY, JSON.stringify(operator));
    else localStorage.removeItem(PROFILE_KEY);
  } catch {
    // Storage disabled: the session still works (the cookie), the app just asks /me less cleverly.
  }
}

function roleOf(operator: Operator | null, viaToken: boolean): OperatorRole | null {
  if (operator) return operator.role;
  return viaToken ? 'admin' : null;
}

/** Without a provider (a page alone in a test): nobody is known, the calls still work. */
const SessionContext = createContext<Session>({
  operator: null,
  viaToken: false,
  signedIn: false,
  role: null,
  signIn: (email, password) => login(email, password).then((answer) => answer.operator),
  signInWithToken: (token) => setOperatorToken(token),
  signOut: () => logout(),
  expired: () => {},
});

export function useSession(): Session {
  return useContext(SessionContext);
}

interface SessionProviderProps {
  children: ReactNode;
  /** Known already (tests): `/api/me` is not asked. */
  initialOperator?: Operator;
}

export function SessionProvider({ children, initialOperator }: SessionProviderProps) {
  const [operator, setOperator] = useState<Operator | null>(() => initialOperator ?? storedProfile());
  const [viaToken, setViaToken] = useState(() => getOperatorToken() !== null);

  const refreshMe = useCallback(() => {
    getMe().then(
      (me) => {
        setOperator(me);
        storeProfile(me);
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) {
          storeProfile(null);
          setOperator(null);
        }
        // Anything else (offline, a server without /me): keep what we had.
      },
    );
  }, []);

  useEffect(() => {
    if (initialOperator) return;
    if (storedProfile() !== null && getOperatorToken() === null) refreshMe();
  }, [initialOperator, refreshMe]);

  const signIn = useCallback(async (email: string, password: string) => {
    const { operator: me } = await login(email, password);
    // The cookie is the session now; a stored API token would be sent instead of it.
    setOperatorToken(null);
    setViaToken(false);
    storeProfile(me);
    setOperator(me);
    return me;
  }, []);

  const signInWithToken = useCallback((token: string) => {
    setOperatorToken(token);
    storeProfile(null);
    setOperator(null);
    setViaToken(true);
  }, []);

  const forget = useCallback(() => {
    setOperatorToken(null);
    storeProfile(null);
    setOperator(null);
    setViaToken(false);
  }, []);

  const signOut = useCallback(async () => {
    try {
      if (getOperatorToken() === null) await logout();
    } catch {
      // Signed out on the server already, or unreachable: the browser forgets the session anyway.
    } finally {
      forget();
    }
  }, [forget]);

  const expired = useCallback(() => {
    // A refused API token is the token prompt's business; a lapsed cookie session ends here.
    if (getOperatorToken() !== null) return;
    storeProfile(null);
    setOperator(null);
  }, []);

  const value = useMemo<Session>(
    () => ({
      operator,
      viaToken,
      signedIn: operator !== null || viaToken,
      role: roleOf(operator, viaToken),
      signIn,
      signInWithToken,
      signOut,
      expired,
    }),
    [operator, viaToken, signIn, signInWithToken, signOut, expired],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
