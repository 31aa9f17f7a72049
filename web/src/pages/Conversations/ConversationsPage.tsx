import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { listConversations } from '../../api/client';
import {
  CONVERSATION_STATUSES,
  MAX_SEARCH_CHARS,
  type ConversationItem,
  type ConversationStatus,
} from '../../api/types';
import { usePagedList } from '../../api/usePagedList';
import { Button } from '../../components/Button/Button';
import { tableStyles as table } from '../../components/DataTable/DataTable';
import { PagedTable } from '../../components/DataTable/PagedTable';
import { FilterBar, SelectField, TextField } from '../../components/Field/Field';
import { pageStyles as frame } from '../../components/Page/Page';
import { formatDateTime } from '../../lib/format';
import { CONVERSATION_STATUS_LABELS, labelOf } from '../../lib/labels';
import styles from './ConversationsPage.module.css';
import { Snippet } from './Snippet';

const PAGE_SIZE = 20;

const STATUS_OPTIONS: ReadonlyArray<{ value: ConversationStatus | ''; label: string }> = [
  { value: '', label: 'Any status' },
  ...CONVERSATION_STATUSES.map((status) => ({ value: status, label: CONVERSATION_STATUS_LABELS[status] })),
];

function statusFrom(params: URLSearchParams): ConversationStatus | '' {
  const raw = params.get('status');
  return CONVERSATION_STATUSES.find((status) => status === raw) ?? '';
}

/** The search text of the address, as the server takes it (1 to 200 characters; blank: none). */
function searchFrom(params: URLSearchParams): string {
  const raw = (params.get('q') ?? '').trim();
  return [...raw].slice(0, MAX_SEARCH_CHARS).join('');
}

function emptyText(status: ConversationStatus | '', q: string): string {
  if (q) return `No conversations match “${q}”${status ? ` with status “${CONVERSATION_STATUS_LABELS[status]}”` : ''}.`;
  return status ? `No conversations with status “${CONVERSATION_STATUS_LABELS[status]}”.` : 'No conversations yet.';
}

export function ConversationsPage() {
  // The filters live in the address, so a filtered list can be bookmarked and Back restores it.
  const [searchParams, setSearchParams] = useSearchParams();
  const status = statusFrom(searchParams);
  const q = searchFrom(searchParams);
  // What is typed; searched for on Enter or "Search".
  const [typed, setTyped] = useState(q);
  useEffect(() => setTyped(q), [q]);
  const fetchPage = useCallback(
    (cursor: string | null) => listConversations({ limit: PAGE_SIZE, cursor, status, q }),
    [status, q],
  );
  const list = usePagedList(fetchPage, (item: ConversationItem) => item.thread_id);
  const navigate = useNavigate();

  const setFilters = (next: { status: ConversationStatus | ''; q: string }) => {
    const params: Record<string, string> = {};
    if (next.q) params.q = next.q;
    if (next.status) params.status = next.status;
    setSearchParams(params);
  };
  const search = () => setFilters({ status, q: typed.trim() });
  const open = (threadId: string) => navigate(`/conversations/${encodeURIComponent(threadId)}`);

  return (
    <section className={frame.page} aria-labelledby="conversations-title">
      <h1 className={frame.title} id="conversations-title">
        Conversations
      </h1>

      <FilterBar label="Filter conversations" onSubmit={search}>
        <TextField
          label="Search conversations"
          type="search"
          value={typed}
          placeholder="e.g. refund"
          onChange={setTyped}
        />
        <Button type="submit" variant="primary">
          Search
        </Button>
        <SelectField label="Status" value={status} options={STATUS_OPTIONS} onChange={(next) => setFilters({ status: next, q })} />
      </FilterBar>

      <PagedTable
        list={list}
        label="Conversations list"
        empty={emptyText(status, q)}
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
                {/* Titled by the customer's first message; the latest text below it. */}
                {item.title || item.preview || <span className={table.muted}>(no messages)</span>}
              </Link>
              {item.snippet ? (
                <span className={styles.detail}>
                  <Snippet snippet={item.snippet} />
                </span>
              ) : item.title && item.preview && item.preview !== item.title ? (
                <span className={styles.detail}>{item.preview}</span>
              ) : null}
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
