import { useEffect, useRef } from 'react';
import { getOperatorToken } from './client';
import type { DeskEvent } from './types';

/**
 * The desk's live feed, `GET /api/desk/events` (Server-Sent Events): every event of every
 * conversation, internal notes included, each message `id: <seq>`, `event: event`,
 * `data: {"seq":N,"event":{…}}`.
 *
 * One `EventSource` serves the whole page (the nav badge, the inbox, an open conversation): it is
 * opened by the first subscriber and closed with the last. The browser reconnects it by itself
 * after a network drop, sending `Last-Event-ID`, so nothing is missed. When it gives up (the server
 * answered an error, e.g. 401), it is opened again after `REOPEN_MS` with `?after_seq=` the last
 * seq seen.
 *
 * A listener gets each event, or `null` for "events may have been missed: read again" (after a
 * reconnect). `EventSource` cannot send an `Authorization` header: it authenticates with the
 * session cookie. Someone signed in with only the API token has no cookie, so for them the feed
 * is a poll: a `null` every `POLL_MS`.
 */
export type DeskListener = (event: DeskEvent | null) => void;

export const REOPEN_MS = 3000;
export const POLL_MS = 5000;

const listeners = new Set<DeskListener>();
let source: EventSource | null = null;
let pollTimer: ReturnType<typeof setInterval> | null = null;
let reopenTimer: ReturnType<typeof setTimeout> | null = null;
let lastSeq = 0;
let hadError = false;

function notify(event: DeskEvent | null): void {
  for (const listener of [...listeners]) listener(event);
}

function parseDeskEvent(data: unknown): DeskEvent | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { seq, event } = value as { seq?: unknown; event?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return null;
  if (typeof event !== 'object' || event === null) return null;
  const envelope = event as { kind?: unknown; thread_id?: unknown };
  if (typeof envelope.kind !== 'string' || typeof envelope.thread_id !== 'string') return null;
  return { seq, event: event as DeskEvent['event'] };
}

function onMessage(message: MessageEvent): void {
  const desk = parseDeskEvent(message.data);
  if (!desk || desk.seq <= lastSeq) return;
  lastSeq = desk.seq;
  notify(desk);
}

function open(): void {
  const url = lastSeq > 0 ? `/api/desk/events?after_seq=${lastSeq}` : '/api/desk/events';
  const next = new EventSource(url);
  source = next;
  next.addEventListener('event', onMessage);
  next.onopen = () => {
    // Back after an error: whatever was said while it was down may need a fresh read.
    if (hadError) notify(null);
    hadError = false;
  };
  next.onerror = () => {
    hadError = true;
    if (next.readyState !== EventSource.CLOSED) return; // the browser is reconnecting by itself
    next.close();
    if (source === next) source = null;
    reopenTimer = setTimeout(() => {
      reopenTimer = null;
      if (listeners.size > 0 && source === null) open();
    }, REOPEN_MS);
  };
}

function start(): void {
  if (getOperatorToken() !== null) {
    pollTimer = setInterval(() => notify(null), POLL_MS);
  } else {
    open();
  }
}

function stop(): void {
  source?.close();
  source = null;
  if (pollTimer !== null) clearInterval(pollTimer);
  if (reopenTimer !== null) clearTimeout(reopenTimer);
  pollTimer = null;
  reopenTimer = null;
  hadError = false;
}

export function subscribeDeskEvents(listener: DeskListener): () => void {
  listeners.add(listener);
  if (listeners.size === 1) start();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) stop();
  };
}

/** For tests: forget the last seq seen. */
export function resetDeskEvents(): void {
  stop();
  listeners.clear();
  lastSeq = 0;
}

/**
 * Calls `onEvent` for each desk event while `enabled`. The latest `onEvent` is used without
 * resubscribing, so it may be an inline function.
 */
export function useDeskEvents(onEvent: DeskListener, enabled = true): void {
  const latest = useRef(onEvent);
  latest.current = onEvent;
  useEffect(() => {
    if (!enabled) return undefined;
    return subscribeDeskEvents((event) => latest.current(event));
  }, [enabled]);
}

/**
 * Runs `refresh` once, `delayMs` after the last of a burst of desk events that `matters` (all of
 * them when not given): ten events of one turn cost one read.
 */
export function useDeskRefresh(
  refresh: () => void,
  { enabled = true, delayMs = 200, matters }: { enabled?: boolean; delayMs?: number; matters?: (event: DeskEvent) => boolean } = {},
): void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(
    () => () => {
      if (timer.current !== null) clearTimeout(timer.current);
    },
    [],
  );
  useDeskEvents((event) => {
    if (event !== null && matters && !matters(event)) return;
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, delayMs);
  }, enabled);
}
