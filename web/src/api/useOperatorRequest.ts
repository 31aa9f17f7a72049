import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, getOperatorToken, setOperatorToken } from './client';

interface TokenRequest {
  retry: () => void;
  /** A token was sent and refused, as opposed to none being stored yet. */
  rejected: boolean;
}

/**
 * Runs operator `/api` requests. A 401 asks for the operator token (see `TokenPrompt`) and, once
 * one is given, runs the same request again; other failures become a message to show.
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

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const run = useCallback(<T,>(request: () => Promise<T>, onSuccess: (value: T) => void): void => {
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
          setTokenRequest({ retry: () => void attempt(), rejected: sentToken !== null });
        } else {
          setError(caught instanceof Error ? caught.message : 'Something went wrong.');
        }
      } finally {
        if (current()) setLoading(false);
      }
    };
    void attempt();
  }, []);

  const submitToken = useCallback(
    (token: string) => {
      setOperatorToken(token.trim());
      tokenRequest?.retry();
    },
    [tokenRequest],
  );

  const cancelToken = useCallback(() => {
    setTokenRequest(null);
    setError('An operator token is needed to see this page.');
  }, []);

  const dismissError = useCallback(() => setError(null), []);

  return {
    loading,
    error,
    dismissError,
    run,
    needsToken: tokenRequest !== null,
    tokenRejected: tokenRequest?.rejected ?? false,
    submitToken,
    cancelToken,
  };
}

export type OperatorRequest = ReturnType<typeof useOperatorRequest>;
