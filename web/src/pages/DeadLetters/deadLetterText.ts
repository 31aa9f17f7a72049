import { ApiError } from '../../api/client';
import type { DeadLetter } from '../../api/types';

export type DeadLetterAction = 'redrive' | 'discard';

/** What the dead letter's original message said, when it is a user message with text. */
export function originalText(letter: DeadLetter): string | null {
  const original = letter.original;
  if (typeof original === 'string') return original;
  if (typeof original === 'object' && original !== null && 'content' in original) {
    const content = (original as { content: unknown }).content;
    return typeof content === 'string' ? content : null;
  }
  return null;
}

export function originalKind(letter: DeadLetter): string | null {
  const original = letter.original;
  if (typeof original === 'object' && original !== null && 'kind' in original) {
    const kind = (original as { kind: unknown }).kind;
    return typeof kind === 'string' ? kind : null;
  }
  return null;
}

/** The question and the button of the confirmation before an action. */
export function confirmation(action: DeadLetterAction, letter: DeadLetter) {
  return action === 'redrive'
    ? {
        title: `Redrive dead letter ${letter.id}?`,
        body: 'Its message goes back to the workers as a new turn of the same conversation, and the customer may get an answer. The dead letter is removed once the message is stored.',
        confirmLabel: 'Redrive',
      }
    : {
        title: `Discard dead letter ${letter.id}?`,
        body: 'It is deleted for good and its message is never answered. This cannot be undone.',
        confirmLabel: 'Discard',
      };
}

/** The failure of an action in words an operator can act on; other errors keep the server's words. */
export function actionError(action: DeadLetterAction, id: number, caught: unknown): unknown {
  if (!(caught instanceof ApiError)) return caught;
  const verb = action === 'redrive' ? 'redriven' : 'discarded';
  switch (caught.code) {
    case 'not_found':
      return new ApiError(
        caught.status,
        caught.code,
        `Dead letter ${id} is not there any more: it was already redriven or discarded.`,
      );
    case 'not_redrivable': {
      // The server says "cannot be redriven: <reason>; discard it instead": keep the reason only.
      const reason = caught.message.replace(/^cannot be redriven:\s*/, '').replace(/;\s*discard it instead\.?$/, '');
      return new ApiError(
        caught.status,
        caught.code,
        `Dead letter ${id} cannot be redriven: its original is not a user message (${reason}). Discard it instead.`,
      );
    }
    case 'unavailable':
      return new ApiError(
        caught.status,
        caught.code,
        `Dead letter ${id} was not ${verb}: the message log did not answer. Nothing changed; try again in a moment.`,
      );
    default:
      return caught;
  }
}
