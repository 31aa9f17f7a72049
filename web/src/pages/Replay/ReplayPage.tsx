import { useCallback } from 'react';
import { Link, useParams } from 'react-router-dom';
import { getReplay } from '../../api/client';
import { kindTone } from '../../api/eventKinds';
import type { ReplayStep } from '../../api/types';
import { useOperatorResource } from '../../api/useOperatorResource';
import { Button } from '../../components/Button/Button';
import { JsonDetails } from '../../components/JsonDetails/JsonDetails';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTimeSeconds } from '../../lib/format';
import styles from './ReplayPage.module.css';
import { formatGap, gapMs, stepView } from './stepView';

function Step({ step, previous }: { step: ReplayStep; previous: ReplayStep | undefined }) {
  const view = stepView(step);
  const gap = gapMs(previous, step);
  return (
    <li className={`${styles.step} ${styles[kindTone(step.kind)] ?? ''}`}>
      <div className={styles.stepHeader}>
        <span className={styles.kindLabel}>{view.title}</span>
        <code className={styles.kind}>{step.kind}</code>
        <span className={styles.seq}>#{step.seq}</span>
        <span className={styles.time}>
          <time dateTime={step.occurred_at}>{formatDateTimeSeconds(step.occurred_at)}</time>
          {gap !== null ? (
            <span className={styles.gap} title="Time since the step before">
              {' '}
              {formatGap(gap)}
            </span>
          ) : null}
        </span>
      </div>
      {view.text !== null ? <p className={styles.body}>{view.text}</p> : null}
      {view.facts.length > 0 || view.deadLetterId !== null ? (
        <p className={styles.facts}>
          {view.facts.map((fact) => (
            <span key={fact}>{fact}</span>
          ))}
          {view.deadLetterId !== null ? (
            <span>
              <Link to={`/dead-letters/${view.deadLetterId}`}>dead letter {view.deadLetterId}</Link>
            </span>
          ) : null}
        </p>
      ) : null}
      {view.expanders.length > 0 ? (
        <div className={styles.expanders}>
          {view.expanders.map((expander) => (
            <JsonDetails key={expander.label} summary={expander.label} value={expander.value} />
          ))}
        </div>
      ) : null}
    </li>
  );
}

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

      {replay ? (
        replay.steps.length === 0 ? (
          <p className={styles.muted}>This conversation has no steps yet.</p>
        ) : (
          <ol className={styles.timeline} aria-label="Conversation steps">
            {replay.steps.map((step, index) => (
              <Step key={`${step.seq}-${step.event_id}`} step={step} previous={replay.steps[index - 1]} />
            ))}
          </ol>
        )
      ) : null}
    </section>
  );
}
