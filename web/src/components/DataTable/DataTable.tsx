import type { ReactNode } from 'react';
import styles from './DataTable.module.css';

/** Class names for the table inside (`table`, `number`, `lead`, `pill`, …). */
export const tableStyles = styles;

interface TableScrollProps {
  /** Names the scrollable region for screen readers and keyboard users. */
  label: string;
  children: ReactNode;
}

/**
 * The box a wide table scrolls in. It is focusable so keyboard users can scroll it sideways, and
 * therefore labelled.
 */
export function TableScroll({ label, children }: TableScrollProps) {
  return (
    <div className={styles.wrap} role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
