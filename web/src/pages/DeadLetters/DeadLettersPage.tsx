import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router-dom';
import { listDeadLetters } from '../../api/client';
import { DEAD_LETTER_CATEGORIES, type DeadLetter, type DeadLetterCategory, type DeadLetterFilter } from '../../api/types';
import { usePagedList } from '../../api/usePagedList';
import { Button } from '../../components/Button/Button';
import { tableStyles as table } from '../../components/DataTable/DataTable';
import { PagedTable } from '../../components/DataTable/PagedTable';
import { FilterBar, SelectField, TextField } from '../../components/Field/Field';
import { Notice } from '../../components/Notice/Notice';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTime, isoToLocalInput, localInputToIso } from '../../lib/format';
import { DEAD_LETTER_CATEGORY_LABELS, labelOf } from '../../lib/labels';
import styles from './DeadLettersPage.module.css';
import { originalText } from './deadLetterText';
import { useBulkRedrive } from './useBulkRedrive';
import { DeadLetterActionButtons, useDeadLetterAction } from './useDeadLetterAction';

const PAGE_SIZE = 50;

const CATEGORY_OPTIONS: ReadonlyArray<{ value: DeadLetterCategory | ''; label: string }> = [
  { value: '', label: 'Any category' },
  ...DEAD_LETTER_CATEGORIES.map((category) => ({ value: category, label: DEAD_LETTER_CATEGORY_LABELS[category] })),
];

/** The filters in force: they live in the address, so Back, reload and links keep them. */
function filterFrom(params: URLSearchParams): Required<DeadLetterFilter> {
  const raw = params.get('category');
  return {
    category: DEAD_LETTER_CATEGORIES.find((category) => category === raw) ?? '',
    thread_id: params.get('thread_id') ?? '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
  };
}

function FilterForm({ applied, onApply }: { applied: Required<DeadLetterFilter>; onApply: (f: Required<DeadLetterFilter>) => void }) {
  const [draft, setDraft] = useState(applied);
  useEffect(() => setDraft(applied), [applied]);
  const set = <K extends keyof DeadLetterFilter>(key: K, value: Required<DeadLetterFilter>[K]) =>
    setDraft((previous) => ({ ...previous, [key]: value }));
  const empty = { category: '', thread_id: '', since: '', until: '' } as const;

  return (
    <FilterBar label="Filter dead letters" onSubmit={() => onApply({ ...draft, thread_id: draft.thread_id.trim() })}>
      <SelectField label="Category" value={draft.category} options={CATEGORY_OPTIONS} onChange={(v) => set('category', v)} />
      <TextField label="Conversation id" value={draft.thread_id} onChange={(v) => set('thread_id', v)} />
      <TextField
        label="Failed at or after"
        type="datetime-local"
        value={isoToLocalInput(draft.since)}
        onChange={(v) => set('since', localInputToIso(v))}
      />
      <TextField
        label="Failed before"
        type="datetime-local"
        value={isoToLocalInput(draft.until)}
        onChange={(v) => set('until', localInputToIso(v))}
      />
      <Button type="submit" variant="primary">
        Apply filters
      </Button>
      <Button onClick={() => onApply(empty)}>Clear filters</Button>
    </FilterBar>
  );
}

export function DeadLettersPage() {
  const [searchParams, setSearchParams] = useSearchParams();
  // Keyed by the query text, so the filter (and the fetch) change only when the address does.
  const filterKey = searchParams.toString();
  const filter = useMemo(() => filterFrom(new URLSearchParams(filterKey)), [filterKey]);
  const filtered = Object.values(filter).some(Boolean);

  const fetchPage = useCallback(
    (cursor: string | null) => listDeadLetters({ limit: PAGE_SIZE, cursor, ...filter }),
    [filter],
  );
  const list = usePagedList(fetchPage, (item: DeadLetter) => String(item.id));

  // A message handed over by the detail page after it acted (then dropped from history).
  const location = useLocation();
  const navigate = useNavigate();
  const [done, setDone] = useState<string | null>(() => {
    const state: unknown = location.state;
    return typeof state === 'object' && state !== null && 'done' in state && typeof state.done === 'string'
      ? state.done
      : null;
  });
  useEffect(() => {
    if (location.state) navigate({ pathname: location.pathname, search: location.search }, { replace: true, state: null });
  }, [location, navigate]);

  // After any action: say what happened and show what is left.
  const finished = (message: string) => {
    setDone(message);
    list.reload();
  };
  const action = useDeadLetterAction(finished, list.reload);
  const bulk = useBulkRedrive(filter, finished);

  const apply = (next: Required<DeadLetterFilter>) => {
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries(next)) if (value) params[key] = value;
    setSearchParams(params);
  };

  return (
    <section className={frame.page} aria-labelledby="dead-letters-title">
      <div className={frame.header}>
        <h1 className={frame.title} id="dead-letters-title">
          Dead letters
        </h1>
        <div className={frame.actions}>
          <Button onClick={bulk.start} disabled={list.loaded && list.items.length === 0}>
            Redrive all matching…
          </Button>
          <Button onClick={list.reload}>Refresh</Button>
        </div>
      </div>
      <p className={frame.intro}>
        Customer messages the workers gave up on. Redrive one to have it answered again, or discard it.
      </p>

      <FilterForm applied={filter} onApply={apply} />

      {done ? (
        <Notice
          tone="success"
          actions={
            <Button size="small" onClick={() => setDone(null)}>
              Dismiss
            </Button>
          }
        >
          {done}
        </Notice>
      ) : null}
      <RequestStatus request={action.request} />
      <RequestStatus request={bulk.request} />
      <PagedTable
        list={list}
        label="Dead letters list"
        empty={filtered ? 'No dead letters match these filters.' : 'No dead letters. Every message was answered.'}
        columns={
          <>
            <th scope="col">Id</th>
            <th scope="col">Failed</th>
            <th scope="col">Error</th>
            <th scope="col" className={table.number}>
              Attempts
            </th>
            <th scope="col">Message</th>
            <th scope="col">Actions</th>
          </>
        }
        row={(letter) => (
          <tr key={letter.id}>
            <th scope="row" className={table.lead} data-label="Id">
              <Link to={`/dead-letters/${letter.id}`} aria-label={`Dead letter ${letter.id}`}>
                #{letter.id}
              </Link>
            </th>
            <td className={table.nowrap} data-label="Failed">
              {formatDateTime(letter.failed_at)}
            </td>
            {/* The category heads its error: one column fewer keeps the actions in view at laptop width. */}
            <td data-label="Error">
              <span className={table.pill}>{labelOf(DEAD_LETTER_CATEGORY_LABELS, letter.category)}</span>
              <div className={styles.error}>{letter.error}</div>
            </td>
            <td className={table.number} data-label="Attempts">
              {letter.attempts}
            </td>
            <td className={styles.message} data-label="Message">
              {originalText(letter) ?? <span className={table.muted}>(not a text message)</span>}
            </td>
            <td data-label="Actions">
              <div className={frame.actions}>
                <DeadLetterActionButtons letter={letter} ask={action.ask} compact />
              </div>
            </td>
          </tr>
        )}
      />
      {action.dialog}
      {bulk.dialog}
    </section>
  );
}
