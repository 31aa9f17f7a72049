import { useCallback, useEffect, useId, useMemo, useRef, useState } from 'react';
import { ApiError, editOperation, getImport, publishImport } from '../../api/client';
import {
  OPERATION_CLASSES,
  type ImportJob,
  type ImportOperation,
  type OperationClass,
  type OperationEdit,
} from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog/ConfirmDialog';
import { TableScroll, tableStyles as table } from '../../components/DataTable/DataTable';
import { FilterBar, SelectField, TextField, fieldStyles as field } from '../../components/Field/Field';
import { Notice } from '../../components/Notice/Notice';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { Working, workingStyles } from '../../components/Working/Working';
import { actionError, importErrorText, plural, publishError, publishedText } from './importText';
import styles from './ImportsPage.module.css';

/** How often a pending import is asked about. */
export const POLL_MS = 1000;

type Fields = Pick<ImportOperation, 'class' | 'agent' | 'enabled'>;

interface Filter {
  text: string;
  klass: OperationClass | '';
  /** '' any, '-' none, else an agent's name. */
  agent: string;
  enabled: '' | 'yes' | 'no';
}

const NO_FILTER: Filter = { text: '', klass: '', agent: '', enabled: '' };

const CLASS_FILTER = [
  { value: '' as const, label: 'Any class' },
  ...OPERATION_CLASSES.map((c) => ({ value: c, label: c })),
];
const ENABLED_FILTER = [
  { value: '' as const, label: 'Enabled or not' },
  { value: 'yes' as const, label: 'Enabled only' },
  { value: 'no' as const, label: 'Disabled only' },
];

function matches(op: ImportOperation, filter: Filter): boolean {
  const text = filter.text.trim().toLowerCase();
  if (text && !op.path.toLowerCase().includes(text) && !op.operation_id.toLowerCase().includes(text)) return false;
  if (filter.klass && op.class !== filter.klass) return false;
  if (filter.agent === '-' ? op.agent !== null : filter.agent && op.agent !== filter.agent) return false;
  if (filter.enabled && op.enabled !== (filter.enabled === 'yes')) return false;
  return true;
}

/** One import: polled while pending, then its operations to review and publish. */
export function ImportReview({ id }: { id: string }) {
  const load = useOperatorRequest();
  const { run } = load;
  const [job, setJob] = useState<ImportJob | null>(null);
  const [checks, setChecks] = useState(0);
  const started = useRef(Date.now());

  const fetchJob = useCallback(
    () =>
      run(
        () => getImport(id),
        (value) => {
          setChecks((n) => n + 1);
          setJob(value);
        },
      ),
    [run, id],
  );

  useEffect(() => {
    setJob(null);
    setChecks(0);
    started.current = Date.now();
    fetchJob();
  }, [fetchJob]);

  // Every answer is a new object, so a pending one schedules the next look.
  useEffect(() => {
    if (job?.status !== 'pending') return;
    const timer = setTimeout(fetchJob, POLL_MS);
    return () => clearTimeout(timer);
  }, [job, fetchJob]);

  return (
    <section className={styles.review} aria-labelledby="import-review-title">
      <h2 className={frame.sectionTitle} id="import-review-title">
        {job?.title ? `Import of ${job.title}` : 'Import'}
      </h2>
      <p className={table.mono}>Import {id}</p>
      <RequestStatus request={load} onRetry={fetchJob} />
      {job === null && load.loading ? <p role="status">Loading the import…</p> : null}
      {job?.status === 'pending' ? (
        <Working>
          Reading and classifying the document… (checked {plural(checks, 'time', 'times')},{' '}
          {Math.round((Date.now() - started.current) / 1000)} s)
        </Working>
      ) : null}
      {job?.status === 'failed' ? (
        <Notice tone="error">
          <strong>The import failed. {importErrorText(job.error?.code ?? '')}</strong>
          {job.error ? (
            <span className={workingStyles.detail}>
              {job.error.message} (<code>{job.error.code}</code>)
            </span>
          ) : null}
        </Notice>
      ) : null}
      {job?.status === 'ready' ? <ReadyImport job={job} setJob={setJob} /> : null}
    </section>
  );
}

function ReadyImport({ job, setJob }: { job: ImportJob; setJob: (update: (job: ImportJob | null) => ImportJob | null) => void }) {
  const edit = useOperatorRequest();
  const publish = useOperatorRequest();
  const [filter, setFilter] = useState<Filter>(NO_FILTER);
  const [confirming, setConfirming] = useState(false);
  const [published, setPublished] = useState<string | null>(null);
  const [editError, setEditError] = useState<string | null>(null);
  const agentsId = useId();

  const agents = useMemo(() => {
    const names = new Set<string>();
    for (const op of job.operations) {
      if (op.agent) names.add(op.agent);
      if (op.suggested_agent) names.add(op.suggested_agent);
    }
    return [...names].sort();
  }, [job.operations]);

  const shown = job.operations.filter((op) => matches(op, filter));
  const enabledCount = job.operations.filter((op) => op.enabled && op.usable).length;
  const unusableCount = job.operations.filter((op) => !op.usable).length;

  /**
   * Sets fields of one operation; with `unless`, only the fields still as `unless` has them (so an
   * older edit's answer or rollback never undoes a newer edit made meanwhile).
   */
  const patchOp = (operationId: string, fields: Partial<Fields>, unless?: Partial<Fields>) =>
    setJob((current) =>
      current
        ? {
            ...current,
            operations: current.operations.map((op) => {
              if (op.operation_id !== operationId) return op;
              const next = { ...op };
              for (const key of Object.keys(fields) as Array<keyof Fields>) {
                if (unless && op[key] !== unless[key]) continue;
                (next as Record<string, unknown>)[key] = fields[key];
              }
              return next;
            }),
          }
        : current,
    );

  /** Shows the edit at once, sends it, and puts the old values back if the server refuses it. */
  const change = (op: ImportOperation, body: OperationEdit) => {
    const before: Partial<Fields> = {};
    for (const key of Object.keys(body) as Array<keyof OperationEdit>) (before as Record<string, unknown>)[key] = op[key];
    setEditError(null);
    edit.run(async () => {
      patchOp(op.operation_id, body);
      try {
        const answer = await editOperation(job.id, op.operation_id, body);
        const fresh = answer.operations.find((o) => o.operation_id === op.operation_id);
        if (fresh) {
          const stored = Object.fromEntries(Object.keys(body).map((key) => [key, fresh[key as keyof Fields]]));
          patchOp(op.operation_id, stored, body);
        }
      } catch (caught) {
        patchOp(op.operation_id, before, body);
        const error = actionError(`Could not change ${op.operation_id}, it is back as it was`, caught);
        // A 401 goes to the token prompt (and the edit is tried again); any other refusal is shown here,
        // even when a newer edit has started since (the request drops an older run's error).
        if (error instanceof ApiError) throw error;
        setEditError(error.message);
      }
    }, () => {});
  };

  const confirmTitle = `Publish ${plural(enabledCount, 'enabled operation', 'enabled operations')} as the agents' tools?`;

  return (
    <>
      {job.notes.map((note) => (
        <Notice key={note} tone="info">
          {note}
        </Notice>
      ))}
      <p className={frame.intro}>
        {plural(job.operations.length, 'operation', 'operations')}, {enabledCount} enabled
        {unusableCount > 0 ? `, ${unusableCount} cannot be used` : ''}
        {job.version ? ` (OpenAPI ${job.version})` : ''}. Each change is saved at once; publish when the review is done.
      </p>

      <div className={frame.actions}>
        <Button variant="primary" onClick={() => setConfirming(true)} disabled={publish.loading}>
          {publish.loading ? 'Publishing…' : 'Publish'}
        </Button>
      </div>
      {published ? (
        <Notice tone="success" onDismiss={() => setPublished(null)}>
          {published}
        </Notice>
      ) : null}
      <RequestStatus request={publish} />
      <RequestStatus request={edit} />
      {editError ? (
        <Notice tone="error" onDismiss={() => setEditError(null)}>
          {editError}
        </Notice>
      ) : null}

      <FilterBar label="Filter operations">
        <TextField label="Search path or operation id" type="search" value={filter.text} onChange={(text) => setFilter((f) => ({ ...f, text }))} />
        <SelectField label="Class" value={filter.klass} options={CLASS_FILTER} onChange={(klass) => setFilter((f) => ({ ...f, klass }))} />
        <SelectField
          label="Agent"
          value={filter.agent}
          options={[{ value: '', label: 'Any agent' }, { value: '-', label: 'No agent' }, ...agents.map((a) => ({ value: a, label: a }))]}
          onChange={(agent) => setFilter((f) => ({ ...f, agent }))}
        />
        <SelectField label="Enabled" value={filter.enabled} options={ENABLED_FILTER} onChange={(enabled) => setFilter((f) => ({ ...f, enabled }))} />
        <Button onClick={() => setFilter(NO_FILTER)}>Clear filters</Button>
      </FilterBar>
      <p className={styles.count} role="status">
        Showing {shown.length} of {plural(job.operations.length, 'operation', 'operations')}.
      </p>

      <datalist id={agentsId}>
        {agents.map((agent) => (
          <option key={agent} value={agent} />
        ))}
      </datalist>
      <TableScroll label="Operations">
        <table className={`${table.table} ${styles.operations}`}>
          <thead>
            <tr>
              <th scope="col">Operation id</th>
              <th scope="col">Method and path</th>
              <th scope="col">Class</th>
              <th scope="col">Why</th>
              <th scope="col">Agent</th>
              <th scope="col">Enabled</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((op) => (
              <OperationRow key={op.operation_id} op={op} agentsId={agentsId} onChange={change} />
            ))}
          </tbody>
        </table>
      </TableScroll>
      {shown.length === 0 ? (
        <p className={table.muted}>{job.operations.length === 0 ? 'The document has no operations.' : 'No operation matches these filters.'}</p>
      ) : null}

      {confirming ? (
        <ConfirmDialog
          title={confirmTitle}
          confirmLabel="Publish"
          onCancel={() => setConfirming(false)}
          onConfirm={() => {
            setConfirming(false);
            setPublished(null);
            publish.run(
              () => publishImport(job.id).catch((caught: unknown) => Promise.reject(publishError(caught))),
              (answer) => setPublished(publishedText(answer)),
            );
          }}
        >
          <p>
            The enabled operations become tools the agents can call, with the class and agent chosen here. Disabled
            operations are left out.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

interface RowProps {
  op: ImportOperation;
  agentsId: string;
  onChange: (op: ImportOperation, body: OperationEdit) => void;
}

function OperationRow({ op, agentsId, onChange }: RowProps) {
  const [agent, setAgent] = useState(op.agent ?? '');
  useEffect(() => setAgent(op.agent ?? ''), [op.agent]);
  const commitAgent = () => {
    const next = agent.trim() === '' ? null : agent.trim();
    if (next !== op.agent) onChange(op, { agent: next });
  };
  const reasonsId = `reasons-${op.operation_id}`;
  const unusableId = `unusable-${op.operation_id}`;

  return (
    <tr className={op.usable ? undefined : styles.unusable}>
      <th scope="row" className={`${table.lead} ${table.mono}`} data-label="Operation id">
        {op.operation_id}
      </th>
      {/* Method, path and summary share a cell: eight columns would not fit a laptop's width. */}
      <td data-label="Method and path">
        <div>
          <div className={styles.endpoint}>
            <span className={table.pill}>{op.method.toUpperCase()}</span> <span className={table.mono}>{op.path}</span>
          </div>
          {op.summary ? <div className={styles.summary}>{op.summary}</div> : null}
          {op.usable ? null : (
            <div className={styles.unusableReason} id={unusableId}>
              Cannot be used: {op.unusable_reason ?? 'the document describes it incompletely'}. It is not published.
            </div>
          )}
        </div>
      </td>
      <td data-label="Class">
        {/* One box in the cell, so a phone's card shows it beside its label. */}
        <div>
          <select
            className={`${field.control} ${styles.cellControl}`}
            aria-label={`Class of ${op.operation_id}`}
            aria-describedby={reasonsId}
            value={op.class}
            onChange={(event) => {
              const picked = OPERATION_CLASSES.find((c) => c === event.target.value);
              if (picked && picked !== op.class) onChange(op, { class: picked });
            }}
          >
            {OPERATION_CLASSES.map((c) => (
              <option key={c} value={c}>
                {c === op.suggested_class ? `${c} (suggested)` : c}
              </option>
            ))}
          </select>
          {op.class !== op.suggested_class ? <div className={styles.suggested}>suggested: {op.suggested_class}</div> : null}
        </div>
      </td>
      <td data-label="Why">
        <ul className={styles.reasons} id={reasonsId} aria-label={`Why ${op.operation_id} is ${op.suggested_class}`}>
          {op.reasons.map((reason) => (
            <li key={reason}>{reason}</li>
          ))}
        </ul>
      </td>
      <td data-label="Agent">
        <div>
          <input
            className={`${field.control} ${styles.cellControl} ${styles.agent}`}
            aria-label={`Agent of ${op.operation_id}`}
            list={agentsId}
            value={agent}
            placeholder="no agent"
            spellCheck={false}
            autoComplete="off"
            onChange={(event) => setAgent(event.target.value)}
            onBlur={commitAgent}
            onKeyDown={(event) => {
              if (event.key === 'Enter') {
                event.preventDefault();
                commitAgent();
              }
            }}
          />
          {op.suggested_agent && op.suggested_agent !== op.agent ? (
            <div className={styles.suggested}>suggested: {op.suggested_agent}</div>
          ) : null}
        </div>
      </td>
      <td data-label="Enabled">
        <input
          type="checkbox"
          className={styles.check}
          aria-label={`Enable ${op.operation_id}`}
          aria-describedby={op.usable ? undefined : unusableId}
          checked={op.enabled && op.usable}
          disabled={!op.usable}
          title={op.usable ? undefined : 'This operation cannot be used, so it cannot be enabled'}
          // The box is disabled; the guard is for whatever still delivers a change (jsdom does).
          onChange={(event) => {
            if (op.usable) onChange(op, { enabled: event.target.checked });
          }}
        />
      </td>
    </tr>
  );
}
