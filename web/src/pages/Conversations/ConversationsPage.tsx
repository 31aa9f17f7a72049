import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { listConversations } from '../../api/client';
import type { ConversationPage, ConversationSummary } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTime } from '../../lib/format';
import styles from './ConversationsPage.module.css';

const PAGE_SIZE = 20;

export function ConversationsPage() {
  const [items, setItems] = useState<ConversationSummary[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const request = useOperatorRequest();
  const { run } = request;
  const navigate = useNavigate();

  const load = useCallback(
    (cursor: string | null) => {
      run(
        () => listConversations({ limit: PAGE_SIZE, cursor }),
        (page: ConversationPage) => {
          setItems((previous) => {
            const base = cursor === null ? [] : previous;
            const seen = new Set(base.map((item) => item.thread_id));
            return [...base, ...page.items.filter((item) => !seen.has(item.thread_id))];
          });
          setNextCursor(page.next_cursor);
          setLoaded(true);
        },
      );
    },
    [run],
  );

  useEffect(() => load(null), [load]);

  const open = (threadId: string) => navigate(`/conversations/${encodeURIComponent(threadId)}`);

  return (
    <section className={styles.page} aria-labelledby="conversations-title">
      <h1 className={styles.title} id="conversations-title">
        Conversations
      </h1>

      <RequestStatus request={request} onRetry={() => load(loaded ? nextCursor : null)} />

      {loaded && items.length === 0 ? <p className={styles.muted}>No conversations yet.</p> : null}

      {items.length > 0 ? (
        <div className={styles.tableWrap}>
          <table className={styles.table}>
            <thead>
              <tr>
                <th scope="col">Conversation</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Last activity</th>
                <th scope="col" className={styles.number}>
                  Messages
                </th>
                <th scope="col" className={styles.number}>
                  Turns
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.thread_id} onClick={() => open(item.thread_id)}>
                  <td className={styles.preview} data-label="Conversation">
                    <Link
                      className={styles.previewLink}
                      to={`/conversations/${encodeURIComponent(item.thread_id)}`}
                      title={item.thread_id}
                    >
                      {item.preview ? item.preview : <span className={styles.muted}>(no messages)</span>}
                    </Link>
                  </td>
                  <td data-label="Status">
                    <span className={styles.status}>{item.status}</span>
                  </td>
                  <td className={styles.nowrap} data-label="Started">
                    {formatDateTime(item.started_at)}
                  </td>
                  <td className={styles.nowrap} data-label="Last activity">
                    {formatDateTime(item.last_activity_at)}
                  </td>
                  <td className={styles.number} data-label="Messages">
                    {item.message_count}
                  </td>
                  <td className={styles.number} data-label="Turns">
                    {item.turn_count}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}

      <div className={styles.footer}>
        {nextCursor ? (
          <Button onClick={() => load(nextCursor)} disabled={request.loading}>
            Load more
          </Button>
        ) : null}
        {request.loading ? <span role="status">Loading…</span> : null}
        {loaded && items.length > 0 && !nextCursor ? <span>That is all of them.</span> : null}
      </div>
    </section>
  );
}
