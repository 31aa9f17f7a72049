import { useCallback } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { getInbox } from '../../api/client';
import { useDeskRefresh } from '../../api/deskEvents';
import { useSession } from '../../api/session';
import { INBOX_VIEWS, type InboxItem, type InboxView } from '../../api/types';
import { useOperatorResource } from '../../api/useOperatorResource';
import { TableScroll, tableStyles as table } from '../../components/DataTable/DataTable';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { Segmented } from '../../components/Segmented/Segmented';
import { formatDateTime } from '../../lib/format';
import styles from './InboxPage.module.css';

const VIEW_LABELS: Record<InboxView, string> = {
  unassigned: 'Unassigned',
  mine: 'Mine',
  all: 'All',
};

const EMPTY_TEXT: Record<InboxView, string> = {
  unassigned: 'Nobody is waiting for a person.',
  mine: 'You hold no conversations.',
  all: 'No conversation needs a person.',
};

function viewFrom(params: URLSearchParams): InboxView {
  const raw = params.get('view');
  return INBOX_VIEWS.find((view) => view === raw) ?? 'unassigned';
}

/** The path of the desk's view of one conversation. */
export function deskPath(threadId: string): string {
  return `/inbox/${encodeURIComponent(threadId)}`;
}

function Holder({ item, myId }: { item: InboxItem; myId: string | null }) {
  if (!item.assignee) return <span className={styles.waiting}>Waiting for a person</span>;
  return <>{item.assignee.id === myId ? 'You' : item.assignee.name}</>;
}

/**
 * The desk's inbox: conversations that need a person, oldest waiting first. Live: every desk event
 * reads the list again (200 ms after the last of a burst), so a new escalation or someone else's
 * take-over shows within a second without a reload.
 */
export function InboxPage() {
  const [params, setParams] = useSearchParams();
  const view = viewFrom(params);
  const session = useSession();
  const { data, reload, request } = useOperatorResource(useCallback(() => getInbox(view), [view]));
  useDeskRefresh(reload, { enabled: session.signedIn || data !== null });

  const setView = (next: InboxView) => setParams(next === 'unassigned' ? {} : { view: next });
  const myId = session.operator?.id ?? null;

  return (
    <section className={frame.page} aria-labelledby="inbox-title">
      <div className={frame.header}>
        <h1 className={frame.title} id="inbox-title">
          Inbox
        </h1>
        <Segmented
          label="Inbox views"
          options={INBOX_VIEWS}
          value={view}
          render={(option) => (
            <>
              {VIEW_LABELS[option]}
              {data ? (
                <>
                  {' '}
                  <span className={styles.count}>{data.counts[option]}</span>
                </>
              ) : null}
            </>
          )}
          onChange={setView}
        />
      </div>

      <RequestStatus request={request} onRetry={reload} />
      {request.loading && !data ? <p role="status">Loading…</p> : null}

      {data && data.items.length === 0 ? <p className={table.muted}>{EMPTY_TEXT[view]}</p> : null}
      {data && data.items.length > 0 ? (
        <TableScroll label="Conversations needing a person">
          <table className={table.table}>
            <thead>
              <tr>
                <th scope="col">Conversation</th>
                <th scope="col">Held by</th>
                <th scope="col">Waiting since</th>
                <th scope="col">Why</th>
                <th scope="col">Last activity</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((item) => (
                <tr key={item.thread_id}>
                  <th scope="row" className={table.lead} data-label="Conversation">
                    <Link to={deskPath(item.thread_id)} title={item.thread_id}>
                      {item.title || item.thread_id}
                    </Link>
                  </th>
                  <td data-label="Held by">
                    <Holder item={item} myId={myId} />
                  </td>
                  <td className={table.nowrap} data-label="Waiting since">
                    <time dateTime={item.waiting_since}>{formatDateTime(item.waiting_since)}</time>
                  </td>
                  <td data-label="Why">{item.escalation_reason ?? <span className={table.muted}>—</span>}</td>
                  <td className={table.nowrap} data-label="Last activity">
                    <time dateTime={item.last_event_at}>{formatDateTime(item.last_event_at)}</time>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      ) : null}
    </section>
  );
}
