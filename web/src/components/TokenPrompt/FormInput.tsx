import { useId } from 'react';
import styles from './TokenPrompt.module.css';

interface FormInputProps {
  label: string;
  type: 'email' | 'password';
  autoComplete: string;
  value: string;
  onChange: (value: string) => void;
  /** Monospace, for tokens. */
  mono?: boolean;
}

/** A labelled, required input of the sign-in forms (label above, full width). */
export function FormInput({ label, type, autoComplete, value, onChange, mono = false }: FormInputProps) {
  const id = useId();
  return (
    <>
      <label className={styles.label} htmlFor={id}>
        {label}
      </label>
      <input
        id={id}
        className={mono ? `${styles.input} ${styles.mono}` : styles.input}
        type={type}
        autoComplete={autoComplete}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        required
      />
    </>
  );
}
