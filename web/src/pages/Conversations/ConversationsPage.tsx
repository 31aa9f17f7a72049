import { useCallback } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { listConversations } from '../../api/client';
import { CONVERSATION_STATUSES, type ConversationStatus, type ConversationSummary } from '../../api/types';
import { usePagedList } from '../../api/usePagedList';
import { tableStyles as table } from '../../components/DataTable/DataTable';
import { PagedTable } from '../../components/DataTable/PagedTable';
import { FilterBar, SelectField } from '../../components/Field/Field';
import { pageStyles as frame } from '../../components/Page/Page';
import { formatDateTime } from '../../lib/format';
import { CONVERSATION_STATUS_LABELS, labelOf } from '../../lib/labels';
import styles from './ConversationsPage.module.css';

const PAGE_SIZE = 20;

const STATUS_OPTIONS: ReadonlyArray<{ value: ConversationStatus | ''; label: string }> = [
  { value: '', label: 'Any status' },
  ...CONVERSATION_STATUSES.map((status) => ({ value: status, label: CONVERSATION_STATUS_LABELS[status] })),
];

function statusFrom(params: URLSearchParams): ConversationStatus | '' {
  const raw = params.get('status');
  return CONVERSATION_STATUSES.find((status) => status === raw) ?? '';
}

export function ConversationsPage() {
  // The filter lives in the address, so a filtered list can be bookmarked and Back restores it.
  const [searchParams, setSearchParams] = useSearchParams();
  const status = statusFrom(searchParams);
  const fetchPage = useCallback(
    (cursor: string | null) => listConversations({ limit: PAGE_SIZE, cursor, status }),
    [status],
  );
  const list = usePagedList(fetchPage, (item: ConversationSummary) => item.thread_id);
  const navigate = useNavigate();

  const setStatus = (next: ConversationStatus | '') => setSearchParams(next ? { status: next } : {});
  const open = (threadId: string) => navigate(`/conversations/${encodeURIComponent(threadId)}`);

  return (
    <section className={frame.page} aria-labelledby="conversations-title">
      <h1 className={frame.title} id="conversations-title">
        Conversations
      </h1>

      <FilterBar label="Filter conversations">
        <SelectField label="Status" value={status} options={STATUS_OPTIONS} onChange={setStatus} />
      </FilterBar>

      <PagedTable
        list={list}
        label="Conversations list"
        empty={status ? `No conversations with status “${CONVERSATION_STATUS_LABELS[status]}”.` : 'No conversations yet.'}
        columns={
          <>
            <th scope="col">Conversation</th>
            <th scope="col">Status</th>
            <th scope="col">Agent</th>
            <th scope="col">Started</th>
            <th scope="col">Last activity</th>
            <th scope="col" className={table.number}>
              Messages
            </th>
            <th scope="col" className={table.number}>
              Turns
            </th>
          </>
        }
        row={(item) => (
          // The whole row opens the replay for mouse users; the link in it is the keyboard and
          // screen-reader way there.
          <tr key={item.thread_id} className={styles.row} onClick={() => open(item.thread_id)}>
            <td className={`${table.lead} ${styles.preview}`} data-label="Conversation">
              <Link
                className={styles.previewLink}
                to={`/conversations/${encodeURIComponent(item.thread_id)}`}
                title={item.thread_id}
              >
                {item.preview ? item.preview : <span className={table.muted}>(no messages)</span>}
              </Link>
            </td>
            <td data-label="Status">
              <span className={table.pill}>{labelOf(CONVERSATION_STATUS_LABELS, item.status)}</span>
            </td>
            <td data-label="Agent">{item.agent ?? <span className={table.muted}>none yet</span>}</td>
            <td className={table.nowrap} data-label="Started">
              {formatDateTime(item.started_at)}
            </td>
            <td className={table.nowrap} data-label="Last activity">
              {formatDateTime(item.last_activity_at)}
            </td>
            <td className={table.number} data-label="Messages">
              {item.message_count}
            </td>
            <td className={table.number} data-label="Turns">
              {item.turn_count}
            </td>
          </tr>
        )}
      />
    </section>
  );
}
