import { useState } from 'react';
import { ApiError, discardDeadLetter, redriveDeadLetter } from '../../api/client';
import type { DeadLetter } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog/ConfirmDialog';
import { actionError, confirmation, type DeadLetterAction } from './deadLetterText';

interface Pending {
  action: DeadLetterAction;
  letter: DeadLetter;
}

/**
 * Redrive and discard, each behind a confirmation. `ask` opens the dialog; `dialog` is the element
 * to render; `request` is the action's own operator request (its token prompt and error).
 * `onDone` gets a sentence saying what happened; `onGone` hears of a dead letter that was no longer
 * there (someone else acted first), so a list can drop it.
 */
export function useDeadLetterAction(onDone: (message: string, letter: DeadLetter) => void, onGone?: () => void) {
  const [pending, setPending] = useState<Pending | null>(null);
  const request = useOperatorRequest();

  const perform = ({ action, letter }: Pending) => {
    const withWords = <T,>(promise: Promise<T>) =>
      promise.catch((caught: unknown) => {
        if (caught instanceof ApiError && caught.code === 'not_found') onGone?.();
        throw actionError(action, letter.id, caught);
      });
    if (action === 'redrive') {
      request.run(
        () => withWords(redriveDeadLetter(letter.id)),
        (answer) =>
          onDone(
            `Dead letter ${letter.id} was redriven: its message is back with the workers (chat event #${answer.seq}).`,
            letter,
          ),
      );
    } else {
      request.run(
        () => withWords(discardDeadLetter(letter.id)),
        () => onDone(`Dead letter ${letter.id} was discarded.`, letter),
      );
    }
  };

  const text = pending ? confirmation(pending.action, pending.letter) : null;
  const dialog =
    pending && text ? (
      <ConfirmDialog
        title={text.title}
        confirmLabel={text.confirmLabel}
        danger={pending.action === 'discard'}
        onCancel={() => setPending(null)}
        onConfirm={() => {
          setPending(null);
          perform(pending);
        }}
      >
        <p>{text.body}</p>
      </ConfirmDialog>
    ) : null;

  return {
    ask: (action: DeadLetterAction, letter: DeadLetter) => setPending({ action, letter }),
    dialog,
    request,
  };
}

interface ActionButtonsProps {
  letter: DeadLetter;
  ask: (action: DeadLetterAction, letter: DeadLetter) => void;
  /** Small, plain buttons for a table row; large, coloured ones for the detail page. */
  compact?: boolean;
}

/** "Redrive" and "Discard", named with the id ("Redrive dead letter 7") so each row's are told apart. */
export function DeadLetterActionButtons({ letter, ask, compact = false }: ActionButtonsProps) {
  const buttons: ReadonlyArray<{ action: DeadLetterAction; text: string; variant: 'primary' | 'danger' }> = [
    { action: 'redrive', text: 'Redrive', variant: 'primary' },
    { action: 'discard', text: 'Discard', variant: 'danger' },
  ];
  return buttons.map(({ action, text, variant }) => (
    <Button
      key={action}
      size={compact ? 'small' : 'normal'}
      variant={compact ? 'secondary' : variant}
      aria-label={`${text} dead letter ${letter.id}`}
      onClick={() => ask(action, letter)}
    >
      {text}
    </Button>
  ));
}
