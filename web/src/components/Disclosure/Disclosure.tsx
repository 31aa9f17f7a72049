import { useId, useState, type ReactNode } from 'react';
import styles from './Disclosure.module.css';

interface DisclosureProps {
  /** The toggle's text and accessible name, e.g. "Result of getOrder". */
  label: ReactNode;
  children: ReactNode;
  defaultOpen?: boolean;
}

/**
 * A button that shows and hides what follows it (`aria-expanded`, `aria-controls`). A real button
 * rather than `<summary>`, so it has the button role everywhere and tests find it by name.
 */
export function Disclosure({ label, children, defaultOpen = false }: DisclosureProps) {
  const [open, setOpen] = useState(defaultOpen);
  const panelId = useId();
  return (
    <div className={styles.disclosure}>
      <button
        type="button"
        className={styles.toggle}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((was) => !was)}
      >
        <span className={styles.marker} aria-hidden="true">
          {open ? '▾' : '▸'}
        </span>
        {label}
      </button>
      {/* Closed, the panel stays (aria-controls names it) but holds nothing: a large JSON result
          costs nothing until someone opens it. */}
      <div id={panelId} className={styles.panel} hidden={!open}>
        {open ? children : null}
      </div>
    </div>
  );
}
