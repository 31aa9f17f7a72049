import { Button } from '../../components/Button/Button';
import { Notice } from '../../components/Notice/Notice';
import { pageStyles as frame } from '../../components/Page/Page';
import { Composer } from '../../components/Composer/Composer';
import { MessageList } from './MessageList';
import styles from './ChatPage.module.css';
import { useChatSocket, type Connection } from './useChatSocket';

const STATUS_TEXT: Record<Connection['status'], string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  closed: 'Offline',
};

function ConnectionBanner({
  connection,
  resumeRefused,
  onReconnect,
}: {
  connection: Connection;
  resumeRefused: boolean;
  onReconnect: () => void;
}) {
  if (resumeRefused || connection.status === 'open') return null;
  if (connection.status === 'connecting') {
    return connection.attempt > 0 ? <Notice tone="warning">Reconnecting…</Notice> : null;
  }
  const seconds = connection.retryInMs === null ? null : Math.ceil(connection.retryInMs / 1000);
  return (
    <Notice
      tone="warning"
      actions={
        <Button size="small" onClick={onReconnect}>
          Reconnect now
        </Button>
      }
    >
      The connection was lost.{' '}
      {seconds === null ? '' : `Trying again in ${seconds} second${seconds === 1 ? '' : 's'}. `}
      Messages you send now will go out when it is back.
    </Notice>
  );
}

/** Quick answers to the agent's confirmation question; typing an answer works as well. */
function ConfirmationAnswers({ onAnswer }: { onAnswer: (answer: string) => void }) {
  return (
    <div className={styles.answers} role="group" aria-label="Answer the question">
      <span className={styles.answersLabel}>Your answer:</span>
      <Button size="small" variant="primary" onClick={() => onAnswer('yes')}>
        Yes, go ahead
      </Button>
      <Button size="small" onClick={() => onAnswer('no')}>
        No, cancel
      </Button>
    </div>
  );
}

export function ChatPage() {
  const { state, connection, send, retry, reconnectNow, newConversation, dismissNotice } = useChatSocket();
  const lastReply = [...state.items].reverse().find((item) => item.type === 'agent' || item.type === 'operator');
  const dotClass =
    connection.status === 'open' ? styles.dotOpen : connection.status === 'closed' ? styles.dotClosed : '';

  return (
    <section className={styles.page} aria-labelledby="chat-title">
      <div className={frame.header}>
        <h1 className={styles.title} id="chat-title">
          Chat with support
        </h1>
        <div className={styles.headerActions}>
          <span className={styles.connection}>
            <span className={`${styles.dot} ${dotClass}`} aria-hidden="true" />
            {STATUS_TEXT[connection.status]}
          </span>
          <Button size="small" onClick={newConversation}>
            New conversation
          </Button>
        </div>
      </div>

      <ConnectionBanner connection={connection} resumeRefused={state.resumeRefused} onReconnect={reconnectNow} />
      {state.notice ? (
        <Notice
          tone="error"
          actions={
            state.resumeRefused ? (
              <Button size="small" variant="primary" onClick={newConversation}>
                Start a new conversation
              </Button>
            ) : (
              <Button size="small" onClick={dismissNotice}>
                Dismiss
              </Button>
            )
          }
        >
          {state.notice.text}
        </Notice>
      ) : null}

      <MessageList items={state.items} agentTyping={state.agentTyping} onRetry={retry} draft={state.draft} />

      {/* Announces each new reply to screen-reader users without re-reading the transcript. */}
      <div className="visually-hidden" aria-live="polite" aria-atomic="true" data-testid="reply-announcer">
        {lastReply?.type === 'agent' ? `Support replied: ${lastReply.text}` : ''}
        {lastReply?.type === 'operator' ? `${lastReply.name} replied: ${lastReply.text}` : ''}
      </div>

      {state.confirmation && !state.agentTyping ? <ConfirmationAnswers onAnswer={send} /> : null}

      <Composer onSend={send} />
    </section>
  );
}
