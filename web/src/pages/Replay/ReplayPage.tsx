import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { getReplay } from '../../api/client';
import { kindLabel, kindTone } from '../../api/eventKinds';
import type { Replay, ReplayStep } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTimeSeconds } from '../../lib/format';
import styles from './ReplayPage.module.css';

/** Fields every step has; whatever else a step carries (tool params, results, reasons) is shown raw. */
const COMMON_FIELDS = new Set(['seq', 'occurred_at', 'kind', 'turn_id', 'event_id', 'thread_id', 'content', 'text']);

function extraFields(step: ReplayStep): Record<string, unknown> | null {
  const extra = Object.fromEntries(Object.entries(step).filter(([key]) => !COMMON_FIELDS.has(key)));
  return Object.keys(extra).length > 0 ? extra : null;
}

function Step({ step }: { step: ReplayStep }) {
  const words = typeof step.content === 'string' ? step.content : typeof step.text === 'string' ? step.text : null;
  const extra = extraFields(step);
  return (
    <li className={`${styles.step} ${styles[kindTone(step.kind)] ?? ''}`}>
      <div className={styles.stepHeader}>
        <span className={styles.kindLabel}>{kindLabel(step.kind)}</span>
        <code className={styles.kind}>{step.kind}</code>
        <span className={styles.seq}>#{step.seq}</span>
        <time className={styles.time} dateTime={step.occurred_at}>
          {formatDateTimeSeconds(step.occurred_at)}
        </time>
      </div>
      {words !== null ? <p className={styles.body}>{words}</p> : null}
      {extra ? (
        <details className={styles.details}>
          <summary>Details</summary>
          <pre className={styles.fields}>{JSON.stringify(extra, null, 2)}</pre>
        </details>
      ) : null}
    </li>
  );
}

export function ReplayPage() {
  const { threadId = '' } = useParams<{ threadId: string }>();
  const [replay, setReplay] = useState<Replay | null>(null);
  const request = useOperatorRequest();
  const { run } = request;

  useEffect(() => {
    setReplay(null);
    run(() => getReplay(threadId), setReplay);
  }, [run, threadId]);

  return (
    <section className={styles.page} aria-labelledby="replay-title">
      <Link className={styles.back} to="/conversations">
        ← All conversations
      </Link>
      <div>
        <h1 className={styles.title} id="replay-title">
          Replay
        </h1>
        <p className={styles.threadId}>{threadId}</p>
      </div>

      <RequestStatus request={request} onRetry={() => run(() => getReplay(threadId), setReplay)} />
      {request.loading && !replay ? <p role="status">Loading…</p> : null}

      {replay ? (
        replay.steps.length === 0 ? (
          <p className={styles.muted}>This conversation has no steps yet.</p>
        ) : (
          <ol className={styles.timeline} aria-label="Conversation steps">
            {replay.steps.map((step) => (
              <Step key={`${step.seq}-${step.event_id}`} step={step} />
            ))}
          </ol>
        )
      ) : null}
    </section>
  );
}
