import { describe, expect, it } from 'vitest';
import { backoffDelay, loadStoredChat, saveStoredChat, socketUrl } from './chatStorage';

describe('socket address', () => {
  it('uses wss on https and ws on http, on the page’s own host', () => {
    expect(socketUrl({ protocol: 'https:', host: 'support.example' }, null)).toBe('wss://support.example/ws');
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, null)).toBe('ws://127.0.0.1:8080/ws');
  });

  it('carries the thread, its token and the last seq when resuming', () => {
    const url = new URL(socketUrl({ protocol: 'http:', host: 'h' }, { threadId: 't 1', token: 'a&b', afterSeq: 42 }));
    expect(url.searchParams.get('thread_id')).toBe('t 1');
    expect(url.searchParams.get('token')).toBe('a&b');
    expect(url.searchParams.get('after_seq')).toBe('42');
  });
});

describe('reconnect back-off', () => {
  it('doubles from one second and stops at ten', () => {
    expect([0, 1, 2, 3, 4, 5, 20].map(backoffDelay)).toEqual([1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  });
});

describe('stored conversation', () => {
  it('round-trips and can be cleared', () => {
    saveStoredChat({ threadId: 't', token: 'k', lastSeq: 7 });
    expect(loadStoredChat()).toEqual({ threadId: 't', token: 'k', lastSeq: 7 });
    saveStoredChat(null);
    expect(loadStoredChat()).toBeNull();
  });

  it('ignores unreadable stored data', () => {
    localStorage.setItem('smart-support.chat', '{not json');
    expect(loadStoredChat()).toBeNull();
  });
});
