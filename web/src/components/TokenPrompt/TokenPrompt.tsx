import { useId, useState, type FormEvent } from 'react';
import { Button } from '../Button/Button';
import { FormInput } from './FormInput';
import styles from './TokenPrompt.module.css';

interface TokenPromptProps {
  /** A token was sent and the server refused it. */
  rejected: boolean;
  busy?: boolean;
  onSubmit: (token: string) => void;
  /** Without it there is no Cancel button. */
  onCancel?: () => void;
}

/** Asks for the static API token (sent as `Authorization: Bearer …`); `SignInForm` offers it second. */
export function TokenPrompt({ rejected, busy = false, onSubmit, onCancel }: TokenPromptProps) {
  const [token, setToken] = useState('');
  const titleId = useId();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim()) onSubmit(token.trim());
  };

  return (
    <form className={styles.form} onSubmit={submit} aria-labelledby={titleId}>
      <h2 className={styles.title} id={titleId}>
        Operator sign-in
      </h2>
      <p className={styles.hint}>
        For scripts and admins without an account: enter the API token (the local demo prints it when it starts).
      </p>
      {rejected ? <p className={styles.error}>That token was not accepted. Check it and try again.</p> : null}
      <FormInput label="Operator token" type="password" autoComplete="off" value={token} onChange={setToken} mono />
      <div className={styles.actions}>
        <Button type="submit" variant="primary" disabled={busy || !token.trim()}>
          Continue
        </Button>
        {onCancel ? <Button onClick={onCancel}>Cancel</Button> : null}
      </div>
    </form>
  );
}
