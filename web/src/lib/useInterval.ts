import { useEffect, useRef } from 'react';

/**
 * Calls `callback` every `ms` while `enabled`, skipping ticks while the tab is hidden (nobody is
 * looking, and the next visible tick catches up). The latest `callback` is used without
 * restarting the timer.
 */
export function useInterval(callback: () => void, ms: number, enabled: boolean): void {
  const latest = useRef(callback);
  latest.current = callback;

  useEffect(() => {
    if (!enabled) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') latest.current();
    }, ms);
    return () => clearInterval(timer);
  }, [ms, enabled]);
}
