import { useCallback, useEffect, useRef, useState } from 'react';
import type { Page } from './types';
import { useOperatorRequest, type OperatorRequest } from './useOperatorRequest';

export interface PagedList<T> {
  items: T[];
  nextCursor: string | null;
  /** The first page has arrived (for the current filters). */
  loaded: boolean;
  request: OperatorRequest;
  loadMore: () => void;
  /** The first page again, keeping the rows on screen until it is in. */
  reload: () => void;
  /** Runs the last request again (after an error). */
  retry: () => void;
}

/**
 * A cursor-paged operator list (`{"items":[…],"next_cursor":…}`): the first page on mount and
 * whenever `fetchPage` changes (pass a memoised one that closes over the filters), "load more"
 * with the cursor, and a reload that keeps the rows on screen until the new first page is in.
 * Rows are de-duplicated by `keyOf`, since a row can move across a page boundary between reads.
 */
export function usePagedList<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  keyOf: (item: T) => string,
): PagedList<T> {
  const request = useOperatorRequest();
  const { run } = request;
  const [items, setItems] = useState<T[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const keyOfRef = useRef(keyOf);
  keyOfRef.current = keyOf;
  const lastCursor = useRef<string | null>(null);

  const load = useCallback(
    (cursor: string | null) => {
      lastCursor.current = cursor;
      run(
        () => fetchPage(cursor),
        (page: Page<T>) => {
          setItems((previous) => {
            const base = cursor === null ? [] : previous;
            const seen = new Set(base.map((item) => keyOfRef.current(item)));
            return [...base, ...page.items.filter((item) => !seen.has(keyOfRef.current(item)))];
          });
          setNextCursor(page.next_cursor ?? null);
          setLoaded(true);
        },
      );
    },
    [run, fetchPage],
  );

  // New filters: the old rows do not answer them, so they go at once.
  useEffect(() => {
    setItems([]);
    setNextCursor(null);
    setLoaded(false);
    load(null);
  }, [load]);

  return {
    items,
    nextCursor,
    loaded,
    request,
    loadMore: useCallback(() => load(nextCursor), [load, nextCursor]),
    reload: useCallback(() => load(null), [load]),
    retry: useCallback(() => load(lastCursor.current), [load]),
  };
}
