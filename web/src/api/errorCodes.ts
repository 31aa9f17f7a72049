/**
 * Plain-words text for the WebSocket error codes of shared/API.md. The server's own `message` is
 * written for developers; people see these instead.
 */
const FRIENDLY: Record<string, string> = {
  invalid_json: 'Something went wrong sending your message. Reload the page and try again.',
  not_an_object: 'Something went wrong sending your message. Reload the page and try again.',
  unknown_type: 'Something went wrong sending your message. Reload the page and try again.',
  binary_not_supported: 'Something went wrong sending your message. Reload the page and try again.',
  empty_content: 'Your message is empty. Type something before sending.',
  content_too_long: 'Your message is too long. Please keep it under 10,000 characters.',
  content_contains_nul: 'Your message contains a NUL character, which cannot be sent. Remove it and try again.',
  frame_too_large: 'Your message is too large to send. Please shorten it.',
  rate_limited: 'You are sending messages too quickly. Wait a few seconds, then try again.',
  unauthorized:
    'This conversation can no longer be opened from this browser. Start a new conversation to keep chatting.',
  unavailable: 'We could not save your message just now. Please try again in a moment.',
  invalid_after_seq:
    'This conversation is no longer on the server. Start a new conversation to keep chatting.',
  conversation_erased: 'This conversation was erased. Start a new conversation to keep chatting.',
};

const FALLBACK = 'Something went wrong. Please try again.';

export function describeErrorCode(code: string): string {
  return Object.hasOwn(FRIENDLY, code) ? (FRIENDLY[code] ?? FALLBACK) : FALLBACK;
}

/** Codes that reject one message the user sent (it can be fixed or retried). */
export function rejectsMessage(code: string): boolean {
  return [
    'empty_content',
    'content_too_long',
    'content_contains_nul',
    'frame_too_large',
    'rate_limited',
    'unavailable',
  ].includes(code);
}

/** Codes after which resuming or writing to this thread cannot work (the server closes the
 *  connection, or, for an erased conversation, refuses every message). */
export function refusesResume(code: string): boolean {
  return code === 'unauthorized' || code === 'invalid_after_seq' || code === 'conversation_erased';
}
