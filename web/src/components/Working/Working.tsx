import type { ReactNode } from 'react';
import styles from './Working.module.css';

/** A job still running on the server: a spinner and what it is doing, announced politely. */
export function Working({ children }: { children: ReactNode }) {
  return (
    <p className={styles.working} role="status">
      <span className={styles.spinner} aria-hidden="true" />
      {children}
    </p>
  );
}

/** Class names beside it: `detail`, a server's message under a headline (e.g. in a Notice). */
export const workingStyles = styles;
