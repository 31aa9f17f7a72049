import { useCallback } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { getDeadLetter } from '../../api/client';
import type { DeadLetter } from '../../api/types';
import { useOperatorResource } from '../../api/useOperatorResource';
import { JsonDetails } from '../../components/JsonDetails/JsonDetails';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTimeSeconds } from '../../lib/format';
import { DEAD_LETTER_CATEGORY_LABELS, labelOf } from '../../lib/labels';
import styles from './DeadLettersPage.module.css';
import { originalKind, originalText } from './deadLetterText';
import { DeadLetterActionButtons, useDeadLetterAction } from './useDeadLetterAction';

function Facts({ letter }: { letter: DeadLetter }) {
  return (
    <dl className={styles.facts}>
      <dt>Error</dt>
      <dd className={styles.error}>{letter.error}</dd>
      <dt>Category</dt>
      <dd>{labelOf(DEAD_LETTER_CATEGORY_LABELS, letter.category)}</dd>
      <dt>Attempts</dt>
      <dd>{letter.attempts}</dd>
      <dt>Failed at</dt>
      <dd>
        <time dateTime={letter.failed_at}>{formatDateTimeSeconds(letter.failed_at)}</time>
      </dd>
      <dt>Conversation</dt>
      <dd>
        {letter.thread_id ? (
          <Link to={`/conversations/${encodeURIComponent(letter.thread_id)}`}>
            Replay of conversation {letter.thread_id}
          </Link>
        ) : (
          'none (the message named no conversation)'
        )}
      </dd>
      <dt>Stored as</dt>
      <dd>
        <code>{letter.source_subject}</code>, chat event #{letter.source_seq}
        {originalKind(letter) ? ` (${originalKind(letter)})` : ''}
      </dd>
    </dl>
  );
}

/** `/dead-letters/:id`: one dead letter in full, with redrive and discard. */
export function DeadLetterPage() {
  const { id = '' } = useParams<{ id: string }>();
  const { data: letter, reload: load, request } = useOperatorResource(useCallback(() => getDeadLetter(id), [id]));
  const navigate = useNavigate();

  // Done (or found gone): back to the list, which says what happened and shows what is left.
  const action = useDeadLetterAction((message) => navigate('/dead-letters', { state: { done: message } }));
  const text = letter ? originalText(letter) : null;

  return (
    <section className={frame.page} aria-labelledby="dead-letter-title">
      <Link className={frame.back} to="/dead-letters">
        ← All dead letters
      </Link>
      <div className={frame.header}>
        <h1 className={frame.title} id="dead-letter-title">
          Dead letter {id}
        </h1>
        {letter ? (
          <div className={frame.actions}>
            <DeadLetterActionButtons letter={letter} ask={action.ask} />
          </div>
        ) : null}
      </div>

      <RequestStatus request={action.request} />
      <RequestStatus request={request} onRetry={load} />
      {request.loading && !letter ? <p role="status">Loading…</p> : null}

      {letter ? (
        <>
          <Facts letter={letter} />
          <section className={frame.page} aria-labelledby="original-title">
            <h2 className={frame.sectionTitle} id="original-title">
              Original message
            </h2>
            {text !== null ? <blockquote className={styles.quote}>{text}</blockquote> : null}
            <JsonDetails summary="Original as stored (JSON)" value={letter.original} open={text === null} />
            {Object.keys(letter.headers).length > 0 ? <JsonDetails summary="Headers" value={letter.headers} /> : null}
          </section>
        </>
      ) : null}
      {action.dialog}
    </section>
  );
}
