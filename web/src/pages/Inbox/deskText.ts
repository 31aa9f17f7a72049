import { ApiError } from '../../api/client';
import { MAX_CONTENT_CHARS } from '../../api/types';
import { errorText } from '../../api/useOperatorRequest';

/** The desk commands' refusals (shared/API.md, "Operators and the desk") in an operator's words. */
const DESK_ERRORS: Record<string, string> = {
  already_assigned: 'Another operator holds this conversation already, so you did not take it over.',
  not_assigned: 'You do not hold this conversation, so nothing was sent. Take it over first.',
  empty_content: 'There is nothing to send: write something first.',
  content_too_long: `That is longer than ${MAX_CONTENT_CHARS.toLocaleString('en')} characters. Shorten it and send again.`,
};

export function deskErrorText(caught: unknown): string {
  if (caught instanceof ApiError) {
    const known = DESK_ERRORS[caught.code];
    if (known !== undefined) return caught.message ? `${known} (${caught.message})` : known;
    if (caught.status === 0) {
      return 'Could not reach the server, so this was not sent. Send it again: the customer will not get it twice.';
    }
  }
  return errorText(caught);
}
