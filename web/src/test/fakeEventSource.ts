import { afterEach, beforeEach, vi } from 'vitest';
import { resetDeskEvents } from '../api/deskEvents';
import type { DeskEvent } from '../api/types';

/** A stand-in for the browser EventSource: lets a test play the server's side of `/api/desk/events`. */
export class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];

  static latest(): FakeEventSource {
    const source = FakeEventSource.instances.at(-1);
    if (!source) throw new Error('no EventSource was opened');
    return source;
  }

  readonly url: string;
  readyState = FakeEventSource.CONNECTING;
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  private readonly listeners = new Map<string, Set<(event: MessageEvent) => void>>();

  constructor(url: string) {
    this.url = url;
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: MessageEvent) => void): void {
    const set = this.listeners.get(type) ?? new Set();
    set.add(listener);
    this.listeners.set(type, set);
  }

  removeEventListener(type: string, listener: (event: MessageEvent) => void): void {
    this.listeners.get(type)?.delete(listener);
  }

  close(): void {
    this.readyState = FakeEventSource.CLOSED;
  }

  // ---- the server's side ----

  open(): void {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.(new Event('open'));
  }

  /** One `event: event` message with `id: <seq>`. */
  emit(desk: DeskEvent): void {
    const message = new MessageEvent('event', { data: JSON.stringify(desk), lastEventId: String(desk.seq) });
    for (const listener of this.listeners.get('event') ?? []) listener(message);
  }

  /** The server refused or the connection failed for good (the browser does not retry). */
  fail(): void {
    this.readyState = FakeEventSource.CLOSED;
    this.onerror?.(new Event('error'));
  }

}

/** A desk event of `kind` in thread `threadId`. */
export function deskEvent(seq: number, threadId: string, kind: string, fields: Record<string, unknown> = {}): DeskEvent {
  return {
    seq,
    event: {
      event_id: `e${seq}`,
      kind,
      thread_id: threadId,
      turn_id: null,
      occurred_at: '2026-12-06T10:00:00Z',
      ...fields,
    },
  };
}

/** In a `describe`: each test gets a fresh fake `EventSource` and a desk feed that saw nothing yet. */
export function useFakeEventSource(): void {
  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
  });
  afterEach(() => {
    resetDeskEvents();
    vi.unstubAllGlobals();
  });
}
