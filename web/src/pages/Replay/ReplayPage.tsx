import { useCallback, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { eraseConversation, getReplay } from '../../api/client';
import { useSession } from '../../api/session';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { useOperatorResource } from '../../api/useOperatorResource';
import { Button } from '../../components/Button/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog/ConfirmDialog';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import styles from './ReplayPage.module.css';
import { StepTimeline } from './StepItem';

export function ReplayPage() {
  const { threadId = '' } = useParams<{ threadId: string }>();
  const { data: replay, reload: load, request } = useOperatorResource(
    useCallback(() => getReplay(threadId), [threadId]),
  );
  // Erasing is the admin's (an agent would only get 403): no button for agents.
  const { role } = useSession();
  const erase = useOperatorRequest();
  const [confirming, setConfirming] = useState(false);
  const [erased, setErased] = useState<string | null>(null);

  const eraseNow = () => {
    setConfirming(false);
    erase.run(
      () => eraseConversation(threadId),
      (answer) =>
        setErased(
          `The conversation was erased: ${answer.events} events and ${answer.dead_letters} dead letters deleted. ` +
            'Only a record of who erased it and when is kept.',
        ),
    );
  };

  return (
    <section className={frame.page} aria-labelledby="replay-title">
      <Link className={frame.back} to="/conversations">
        ← All conversations
      </Link>
      <div className={frame.header}>
        <div>
          <h1 className={frame.title} id="replay-title">
            Replay
          </h1>
          <p className={styles.threadId}>{threadId}</p>
        </div>
        <div className={frame.actions}>
          <Link to={`/dead-letters?thread_id=${encodeURIComponent(threadId)}`}>Dead letters of this conversation</Link>
          <Button onClick={load}>Refresh</Button>
          {role !== 'agent' && erased === null ? (
            <Button variant="danger" onClick={() => setConfirming(true)} disabled={erase.loading}>
              Erase
            </Button>
          ) : null}
        </div>
      </div>

      {confirming ? (
        <ConfirmDialog
          title="Erase this conversation?"
          confirmLabel="Erase"
          danger
          onCancel={() => setConfirming(false)}
          onConfirm={eraseNow}
        >
          <p>
            Its messages, replies, notes, tool calls and dead letters are deleted for good, from the event log and from
            every table. Only a record of who erased it and when is kept. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
      <RequestStatus request={erase} />
      <RequestStatus request={request} onRetry={load} />
      {erased !== null ? <p role="status">{erased}</p> : null}
      {request.loading && !replay && erased === null ? <p role="status">Loading…</p> : null}

      {replay && erased === null ? <StepTimeline steps={replay.steps} /> : null}
    </section>
  );
}
