import { useId, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import { useSession } from '../../api/session';
import type { Operator } from '../../api/types';
import { Button } from '../Button/Button';
import { Disclosure } from '../Disclosure/Disclosure';
import { FormInput } from '../TokenPrompt/FormInput';
import { TokenPrompt } from '../TokenPrompt/TokenPrompt';
import tokenStyles from '../TokenPrompt/TokenPrompt.module.css';
import styles from './SignInForm.module.css';

interface SignInFormProps {
  /** Signed in, with a password (the operator) or the API token (`null`). */
  onSignedIn: (operator: Operator | null) => void;
  /** An API token was sent and refused: the token form starts open and says so. */
  tokenRejected?: boolean;
  onCancel?: () => void;
}

/** A refused sign-in in plain words; a 429 says when to try again. */
export function signInErrorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === 'invalid_credentials' || error.status === 401) {
      return 'That email and password do not match an operator. Check them and try again.';
    }
    if (error.status === 429) {
      const seconds = error.retryAfterMs === null ? null : Math.max(1, Math.ceil(error.retryAfterMs / 1000));
      return seconds === null
        ? 'Too many attempts. Wait a moment and try again.'
        : `Too many attempts. Try again in ${seconds} s.`;
    }
    return error.message;
  }
  return 'Something went wrong. Try again.';
}

/**
 * Email and password first (people); the API token behind "Use an API token instead" (scripts'
 * token, an admin without an account). Shown by `/signin` and wherever an operator request gets 401.
 */
export function SignInForm({ onSignedIn, tokenRejected = false, onCancel }: SignInFormProps) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = useId();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!email.trim() || !password || busy) return;
    setBusy(true);
    setError(null);
    try {
      const operator = await session.signIn(email.trim(), password);
      setPassword('');
      onSignedIn(operator);
    } catch (caught) {
      setError(signInErrorText(caught));
    } finally {
      setBusy(false);
    }
  };

  const submitToken = (token: string) => {
    session.signInWithToken(token);
    onSignedIn(null);
  };

  return (
    <div className={styles.panel}>
      <form className={tokenStyles.form} onSubmit={submit} aria-labelledby={`${id}-title`}>
        <h2 className={tokenStyles.title} id={`${id}-title`}>
          Sign in
        </h2>
        <p className={tokenStyles.hint}>Support operators sign in with the email and password their admin gave them.</p>
        {error ? (
          <p className={tokenStyles.error} role="alert">
            {error}
          </p>
        ) : null}
        <FormInput label="Email" type="email" autoComplete="username" value={email} onChange={setEmail} />
        <FormInput label="Password" type="password" autoComplete="current-password" value={password} onChange={setPassword} />
        <div className={tokenStyles.actions}>
          <Button type="submit" variant="primary" disabled={busy || !email.trim() || !password}>
            {busy ? 'Signing in…' : 'Sign in'}
          </Button>
          {onCancel ? <Button onClick={onCancel}>Cancel</Button> : null}
        </div>
      </form>
      <Disclosure label="Use an API token instead" defaultOpen={tokenRejected}>
        <TokenPrompt rejected={tokenRejected} onSubmit={submitToken} />
      </Disclosure>
    </div>
  );
}
