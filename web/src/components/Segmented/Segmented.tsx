import type { ReactNode } from 'react';
import styles from './Segmented.module.css';

interface SegmentedProps<T extends string> {
  /** The group's accessible name ("Time range"). */
  label: string;
  options: readonly T[];
  value: T;
  /** What each button says; its text is its accessible name. */
  render: (option: T) => ReactNode;
  onChange: (option: T) => void;
}

/** Segmented toggle buttons: each is a Tab stop, Enter or Space picks it, `aria-pressed` says which is on. */
export function Segmented<T extends string>({ label, options, value, render, onChange }: SegmentedProps<T>) {
  return (
    <div className={styles.segmented} role="group" aria-label={label}>
      {options.map((option) => (
        <button
          key={option}
          type="button"
          className={styles.segment}
          aria-pressed={option === value}
          onClick={() => onChange(option)}
        >
          {render(option)}
        </button>
      ))}
    </div>
  );
}
