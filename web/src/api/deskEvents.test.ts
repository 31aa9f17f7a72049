import { afterEach, describe, expect, it, vi } from 'vitest';
import { deskEvent, FakeEventSource, useFakeEventSource } from '../test/fakeEventSource';
import { setOperatorToken } from './client';
import { POLL_MS, subscribeDeskEvents } from './deskEvents';
import type { DeskEvent } from './types';

describe('desk events', () => {
  useFakeEventSource();
  afterEach(() => vi.useRealTimers());

  it('shares one EventSource, drops what was seen, and closes it with the last subscriber', () => {
    const seen: Array<DeskEvent | null> = [];
    const stopA = subscribeDeskEvents((event) => seen.push(event));
    const stopB = subscribeDeskEvents(() => {});
    expect(FakeEventSource.instances).toHaveLength(1);
    const source = FakeEventSource.latest();
    source.open();
    source.emit(deskEvent(1, 'th', 'message.received', { content: 'hi' }));
    source.emit(deskEvent(1, 'th', 'message.received', { content: 'hi' }));
    source.emit(deskEvent(2, 'th', 'note.added', { text: 'n', operator_id: 'op', name: 'Sam' }));
    expect(seen.map((event) => event?.seq)).toEqual([1, 2]);
    stopA();
    expect(source.readyState).toBe(FakeEventSource.OPEN);
    stopB();
    expect(source.readyState).toBe(FakeEventSource.CLOSED);
  });

  it('polls instead with only the API token, which EventSource cannot send', () => {
    vi.useFakeTimers();
    setOperatorToken('api-secret');
    const seen: Array<DeskEvent | null> = [];
    const stop = subscribeDeskEvents((event) => seen.push(event));
    expect(FakeEventSource.instances).toHaveLength(0);
    vi.advanceTimersByTime(POLL_MS * 2);
    expect(seen).toEqual([null, null]);
    stop();
  });
});
