import { useCallback, useEffect, useState } from 'react';
import { useOperatorRequest, type OperatorRequest } from './useOperatorRequest';

export interface OperatorResource<T> {
  /** The last answer for the current `fetch`; `null` until it arrives. */
  data: T | null;
  /** When `data` arrived. */
  loadedAt: Date | null;
  /** Fetches again, keeping `data` on screen until the new answer is in. */
  reload: () => void;
  request: OperatorRequest;
}

/**
 * One operator read (a replay, a report, a dead letter): fetched on mount and whenever `fetch`
 * changes (pass a memoised one that closes over its parameters), when the old answer is dropped
 * at once since it does not answer the new question.
 */
export function useOperatorResource<T>(fetch: () => Promise<T>): OperatorResource<T> {
  const request = useOperatorRequest();
  const { run } = request;
  const [data, setData] = useState<T | null>(null);
  const [loadedAt, setLoadedAt] = useState<Date | null>(null);

  const reload = useCallback(
    () =>
      run(fetch, (value: T) => {
        setData(value);
        setLoadedAt(new Date());
      }),
    [run, fetch],
  );

  useEffect(() => {
    setData(null);
    setLoadedAt(null);
    reload();
  }, [reload]);

  return { data, loadedAt, reload, request };
}
