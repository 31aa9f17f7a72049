import { describe, expect, it } from 'vitest';
import { describeErrorCode, refusesResume } from './errorCodes';

describe('WebSocket error codes in plain words', () => {
  it.each([
    ['empty_content', 'Your message is empty. Type something before sending.'],
    ['content_too_long', 'Your message is too long. Please keep it under 10,000 characters.'],
    ['content_contains_nul', 'Your message contains a NUL character, which cannot be sent. Remove it and try again.'],
    ['frame_too_large', 'Your message is too large to send. Please shorten it.'],
    ['rate_limited', 'You are sending messages too quickly. Wait a few seconds, then try again.'],
    ['unavailable', 'We could not save your message just now. Please try again in a moment.'],
    [
      'unauthorized',
      'This conversation can no longer be opened from this browser. Start a new conversation to keep chatting.',
    ],
  ])('%s reads as a plain sentence', (code, text) => {
    expect(describeErrorCode(code)).toBe(text);
  });

  it.each(['invalid_json', 'not_an_object', 'unknown_type', 'binary_not_supported'])(
    '%s (a client bug, not the user’s fault) asks for a reload',
    (code) => {
      expect(describeErrorCode(code)).toMatch(/Reload the page/);
    },
  );

  it('a resume beyond the stream (the log was replaced) stops resuming and offers a new conversation', () => {
    expect(refusesResume('invalid_after_seq')).toBe(true);
    expect(refusesResume('conversation_erased')).toBe(true);
    expect(describeErrorCode('conversation_erased')).toMatch(/erased\. Start a new conversation/);
    expect(describeErrorCode('invalid_after_seq')).toMatch(/Start a new conversation/);
    expect(refusesResume('unavailable')).toBe(false);
  });

  it('an unknown code gets a general message, never the raw code', () => {
    expect(describeErrorCode('something_new')).toBe('Something went wrong. Please try again.');
    expect(describeErrorCode('toString')).toBe('Something went wrong. Please try again.');
  });
});
