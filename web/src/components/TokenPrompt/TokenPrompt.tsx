import { useId, useState, type FormEvent } from 'react';
import { Button } from '../Button/Button';
import styles from './TokenPrompt.module.css';

interface TokenPromptProps {
  /** A token was sent and the server refused it. */
  rejected: boolean;
  busy?: boolean;
  onSubmit: (token: string) => void;
  onCancel: () => void;
}

/** Asks for the operator token that `/api` wants (sent as `Authorization: Bearer …`). */
export function TokenPrompt({ rejected, busy = false, onSubmit, onCancel }: TokenPromptProps) {
  const [token, setToken] = useState('');
  const inputId = useId();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim()) onSubmit(token.trim());
  };

  return (
    <form className={styles.form} onSubmit={submit} aria-labelledby={`${inputId}-title`}>
      <h2 className={styles.title} id={`${inputId}-title`}>
        Operator sign-in
      </h2>
      <p className={styles.hint}>
        This page is for support operators. Enter the operator token (the local demo prints it when it starts).
      </p>
      {rejected ? <p className={styles.error}>That token was not accepted. Check it and try again.</p> : null}
      <label className={styles.label} htmlFor={inputId}>
        Operator token
      </label>
      <input
        id={inputId}
        className={styles.input}
        type="password"
        autoComplete="off"
        value={token}
        onChange={(event) => setToken(event.target.value)}
        required
      />
      <div className={styles.actions}>
        <Button type="submit" variant="primary" disabled={busy || !token.trim()}>
          Continue
        </Button>
        <Button onClick={onCancel}>Cancel</Button>
      </div>
    </form>
  );
}
