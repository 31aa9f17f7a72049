import { useEffect, useRef } from 'react';
import { Button } from '../../components/Button/Button';
import { formatTime } from '../../lib/format';
import type { ChatItem, DraftReply, UserMessage } from './chatReducer';
import styles from './MessageList.module.css';

interface MessageListProps {
  items: ChatItem[];
  agentTyping: boolean;
  onRetry: (clientMsgId: string) => void;
  /** A reply growing while the model writes it. */
  draft?: DraftReply | null;
}

function UserBubble({ item, onRetry }: { item: UserMessage; onRetry: (clientMsgId: string) => void }) {
  const stateClass = item.status === 'sending' ? styles.sending : item.status === 'failed' ? styles.failed : '';
  return (
    <li className={`${styles.row} ${styles.userRow}`}>
      <span className="visually-hidden">You said:</span>
      <div className={`${styles.bubble} ${styles.user} ${stateClass}`}>{item.content}</div>
      <div className={styles.meta}>
        {item.status === 'sending' ? <span>Sending…</span> : null}
        {item.status === 'sent' && item.occurredAt ? <time dateTime={item.occurredAt}>{formatTime(item.occurredAt)}</time> : null}
        {item.status === 'failed' && item.clientMsgId ? (
          <>
            <span className={styles.failedText}>Not sent</span>
            <Button variant="link" size="small" onClick={() => item.clientMsgId && onRetry(item.clientMsgId)}>
              Retry
            </Button>
          </>
        ) : null}
      </div>
    </li>
  );
}

export function MessageList({ items, agentTyping, onRetry, draft = null }: MessageListProps) {
  const listRef = useRef<HTMLOListElement>(null);

  useEffect(() => {
    const list = listRef.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [items.length, agentTyping, draft?.text]);

  return (
    <ol className={styles.list} ref={listRef} aria-label="Conversation">
      {items.length === 0 ? (
        <li className={styles.empty}>Ask us anything. A support agent will answer here.</li>
      ) : null}
      {items.map((item) => {
        switch (item.type) {
          case 'user':
            return <UserBubble key={item.key} item={item} onRetry={onRetry} />;
          case 'agent':
            return (
              <li key={item.key} className={`${styles.row} ${styles.agentRow}`}>
                <span className="visually-hidden">Support said:</span>
                <div className={`${styles.bubble} ${styles.agent}`}>{item.text}</div>
                <div className={styles.meta}>
                  <time dateTime={item.occurredAt}>{formatTime(item.occurredAt)}</time>
                </div>
              </li>
            );
          case 'operator':
            return (
              <li key={item.key} className={`${styles.row} ${styles.agentRow}`}>
                <span className={styles.author}>{item.name}</span>
                <span className="visually-hidden"> of the support team said:</span>
                <div className={`${styles.bubble} ${styles.operator}`}>{item.text}</div>
                <div className={styles.meta}>
                  <time dateTime={item.occurredAt}>{formatTime(item.occurredAt)}</time>
                </div>
              </li>
            );
          case 'status':
            return (
              <li key={item.key} className={`${styles.row} ${styles.statusRow}`}>
                {item.text}
              </li>
            );
        }
      })}
      {draft ? (
        <li className={`${styles.row} ${styles.agentRow}`} data-draft="true">
          <span className="visually-hidden">Support is writing:</span>
          <div className={`${styles.bubble} ${styles.agent}`}>{draft.text}</div>
        </li>
      ) : agentTyping ? (
        <li className={styles.typing}>Support is typing…</li>
      ) : null}
    </ol>
  );
}
