import type { ReactNode } from 'react';
import { Disclosure } from '../Disclosure/Disclosure';
import styles from './JsonDetails.module.css';

interface JsonDetailsProps {
  /** The toggle's name: "Parameters of getOrder". */
  summary: ReactNode;
  value: unknown;
  open?: boolean;
}

/** Raw JSON (tool parameters and results, stored payloads) behind a show/hide button. */
export function JsonDetails({ summary, value, open = false }: JsonDetailsProps) {
  return (
    <Disclosure label={summary} defaultOpen={open}>
      <pre className={styles.json}>{JSON.stringify(value, null, 2)}</pre>
    </Disclosure>
  );
}
