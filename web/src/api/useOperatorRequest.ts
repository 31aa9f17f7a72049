import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, getOperatorToken } from './client';
import { useSession } from './session';

/** What a 403 `forbidden` says, wherever it comes from. */
export const FORBIDDEN_TEXT =
  'Your operator role does not allow this. Dead letters, imports, regress runs and operators are for admins; ask an admin if you need it.';

/** A failed request in words: the server's message, except where the app knows better. */
export function errorText(caught: unknown): string {
  if (caught instanceof ApiError && caught.status === 403) return FORBIDDEN_TEXT;
  return caught instanceof Error ? caught.message : 'Something went wrong.';
}

interface TokenRequest {
  retry: () => void;
  /** A token was sent and refused, as opposed to none being stored yet. */
  rejected: boolean;
}

/**
 * Runs operator `/api` requests. A 401 asks the person to sign in (see `SignInForm`: email and
 * password, or the API token) and, once they have, runs the same request again; other failures
 * become a message to show.
 *
 * One instance serves one thing on the page (a list, a report, an action): a newer `run` replaces
 * an older one still in flight, whose answer is then dropped, so a slow answer for the previous
 * filter or range never overwrites the current one.
 */
export function useOperatorRequest() {
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [tokenRequest, setTokenRequest] = useState<TokenRequest | null>(null);
  const mounted = useRef(true);
  const latest = useRef(0);
  const { expired } = useSession();

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  /** `describe` puts a failure in words for this request (default: `errorText`). */
  const run = useCallback(<T,>(
    request: () => Promise<T>,
    onSuccess: (value: T) => void,
    describe: (caught: unknown) => string = errorText,
  ): void => {
    const attempt = async () => {
      const generation = ++latest.current;
      const current = () => mounted.current && generation === latest.current;
      const sentToken = getOperatorToken();
      setLoading(true);
      setError(null);
      try {
        const value = await request();
        if (!current()) return;
        setTokenRequest(null);
        onSuccess(value);
      } catch (caught) {
        if (!current()) return;
        if (caught instanceof ApiError && caught.status === 401) {
          expired();
          setTokenRequest({ retry: () => void attempt(), rejected: sentToken !== null });
        } else {
          setError(describe(caught));
        }
      } finally {
        if (current()) setLoading(false);
      }
    };
    void attempt();
  }, [expired]);

  /** Signed in (either way): the request that was refused runs again. */
  const retryAfterSignIn = useCallback(() => tokenRequest?.retry(), [tokenRequest]);

  const cancelToken = useCallback(() => {
    setTokenRequest(null);
    setError('Signing in is needed to see this page.');
  }, []);

  const dismissError = useCallback(() => setError(null), []);

  return {
    loading,
    error,
    dismissError,
    run,
    needsToken: tokenRequest !== null,
    tokenRejected: tokenRequest?.rejected ?? false,
    retryAfterSignIn,
    cancelToken,
  };
}

export type OperatorRequest = ReturnType<typeof useOperatorRequest>;
