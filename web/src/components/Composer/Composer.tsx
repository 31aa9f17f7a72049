import { useId, useState, type FormEvent, type KeyboardEvent } from 'react';
import { MAX_CONTENT_CHARS } from '../../api/types';
import { Button } from '../Button/Button';
import styles from './Composer.module.css';

interface ComposerProps {
  /**
   * Takes the text. Returning nothing, the box empties at once (the chat shows the message as
   * sending); returning a promise, it keeps the text while busy and empties only on `true`.
   */
  onSend: (content: string) => void | Promise<boolean>;
  /** The box's label (its accessible name). */
  label?: string;
  submitLabel?: string;
}

/** A message box: Enter sends, Shift+Enter starts a new line. */
export function Composer({ onSend, label = 'Your message', submitLabel = 'Send' }: ComposerProps) {
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const id = useId();
  const length = draft.length;
  const tooLong = length > MAX_CONTENT_CHARS;
  const canSend = draft.trim().length > 0 && !tooLong;

  const send = () => {
    if (!canSend || busy) return;
    const sent = onSend(draft);
    if (!sent) {
      setDraft('');
      return;
    }
    setBusy(true);
    void sent.then((done) => {
      setBusy(false);
      if (done) setDraft((current) => (current === draft ? '' : current));
    });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    send();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };

  return (
    <form className={styles.form} onSubmit={onSubmit}>
      <label className={styles.label} htmlFor={id}>
        {label}
      </label>
      <div className={styles.row}>
        <textarea
          id={id}
          className={styles.textarea}
          value={draft}
          rows={2}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={onKeyDown}
          aria-describedby={`${id}-hint`}
          aria-invalid={tooLong}
        />
        <Button type="submit" variant="primary" disabled={!canSend || busy}>
          {submitLabel}
        </Button>
      </div>
      <p id={`${id}-hint`} className={`${styles.hint} ${tooLong ? styles.over : ''}`}>
        {tooLong
          ? `Too long: ${length.toLocaleString()} of ${MAX_CONTENT_CHARS.toLocaleString()} characters.`
          : 'Enter to send, Shift+Enter for a new line.'}
      </p>
    </form>
  );
}
