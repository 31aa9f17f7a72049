import { useCallback } from 'react';
import { Link, useParams } from 'react-router-dom';
import { getReplay } from '../../api/client';
import { useOperatorResource } from '../../api/useOperatorResource';
import { Button } from '../../components/Button/Button';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import styles from './ReplayPage.module.css';
import { StepTimeline } from './StepItem';

export function ReplayPage() {
  const { threadId = '' } = useParams<{ threadId: string }>();
  const { data: replay, reload: load, request } = useOperatorResource(
    useCallback(() => getReplay(threadId), [threadId]),
  );

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
        </div>
      </div>

      <RequestStatus request={request} onRetry={load} />
      {request.loading && !replay ? <p role="status">Loading…</p> : null}

      {replay ? <StepTimeline steps={replay.steps} /> : null}
    </section>
  );
}
