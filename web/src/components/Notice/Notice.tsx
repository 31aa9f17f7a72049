import type { ReactNode } from 'react';
import { Button } from '../Button/Button';
import styles from './Notice.module.css';

interface NoticeProps {
  tone?: 'info' | 'success' | 'warning' | 'error';
  children: ReactNode;
  /** Buttons shown beside the text. */
  actions?: ReactNode;
  /** Given (and no `actions`): a "Dismiss" button that calls it. */
  onDismiss?: () => void;
}

/** A banner in plain words. Errors are announced at once (`role="alert"`), the rest politely. */
export function Notice({ tone = 'info', children, actions, onDismiss }: NoticeProps) {
  if (!actions && onDismiss) {
    actions = (
      <Button size="small" onClick={onDismiss}>
        Dismiss
      </Button>
    );
  }
  return (
    <div className={`${styles.notice} ${styles[tone]}`} role={tone === 'error' ? 'alert' : 'status'}>
      <div className={styles.text}>{children}</div>
      {actions ? <div className={styles.actions}>{actions}</div> : null}
    </div>
  );
}
