import { useCallback, useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { getRegress } from '../../api/client';
import type { RegressChangedTurn, RegressRun, RegressSummary } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { TableScroll, tableStyles as table } from '../../components/DataTable/DataTable';
import { Notice } from '../../components/Notice/Notice';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { Working, workingStyles } from '../../components/Working/Working';
import { plural } from '../Imports/importText';
import { comparedFields, kindLabel, runErrorText } from './regressText';
import styles from './RegressPage.module.css';

/** How often a running run is asked about. */
export const POLL_MS = 1000;

/** One run: polled while running (with its progress), then its summary and changed turns. */
export function RegressRunView({ id }: { id: string }) {
  const load = useOperatorRequest();
  const { run: request } = load;
  const [run, setRun] = useState<RegressRun | null>(null);

  const fetchRun = useCallback(() => request(() => getRegress(id), setRun), [request, id]);

  useEffect(() => {
    setRun(null);
    fetchRun();
  }, [fetchRun]);

  // Every answer is a new object, so a running one schedules the next look.
  useEffect(() => {
    if (run?.status !== 'running') return;
    const timer = setTimeout(fetchRun, POLL_MS);
    return () => clearTimeout(timer);
  }, [run, fetchRun]);

  return (
    <section className={styles.run} aria-labelledby="regress-run-title">
      <h2 className={frame.sectionTitle} id="regress-run-title">
        {run ? `Run of ${run.config}` : 'Run'}
      </h2>
      <p className={table.mono}>Run {id}</p>
      <RequestStatus request={load} onRetry={fetchRun} />
      {run === null && load.loading ? <p role="status">Loading the run…</p> : null}
      {run?.status === 'running' ? (
        <Working>
          Replaying… {run.progress.events_read} of {run.progress.events_total} events read,{' '}
          {plural(run.progress.turns_replayed, 'turn', 'turns')} replayed
        </Working>
      ) : null}
      {run?.status === 'failed' ? (
        <Notice tone="error">
          <strong>{runErrorText(run.error?.code ?? '')}</strong>
          {run.error ? (
            <span className={workingStyles.detail}>
              <code>{run.error.message}</code> ({run.error.code})
            </span>
          ) : null}
        </Notice>
      ) : null}
      {run?.status === 'done' && run.summary ? <DoneRun run={run} summary={run.summary} /> : null}
    </section>
  );
}

function DoneRun({ run, summary }: { run: RegressRun; summary: RegressSummary }) {
  const [search, setSearch] = useSearchParams();
  const openId = search.get('turn');
  const open = run.changed.find((turn) => turn.turn_id === openId) ?? null;
  const openTurn = (turnId: string | null) =>
    setSearch(
      (current) => {
        const next = new URLSearchParams(current);
        if (turnId) next.set('turn', turnId);
        else next.delete('turn');
        return next;
      },
      { replace: true },
    );
  const skipped = summary.skipped;
  return (
    <>
      <dl className={styles.summary} aria-label="Summary">
        <div>
          <dt>Turns replayed</dt>
          <dd>{summary.replayed}</dd>
        </div>
        <div>
          <dt>Unchanged</dt>
          <dd>{summary.unchanged}</dd>
        </div>
        <div>
          <dt>Changed</dt>
          <dd>{summary.changed}</dd>
        </div>
        <div>
          <dt>New tool calls (sent nowhere)</dt>
          <dd>{summary.new_tool_calls}</dd>
        </div>
      </dl>
      <p className={styles.hint}>
        Changed by kind:{' '}
        {Object.entries(summary.by_kind)
          .map(([kind, n]) => `${kindLabel(kind)} ${n}`)
          .join(', ')}
        . Not replayed: {skipped.held} held by a person, {skipped.failed} failed, {skipped.unfinished} unfinished,{' '}
        {skipped.unreadable} unreadable. With the {run.engine ?? 'rules'} engine, in {summary.seconds.toFixed(2)} s.
      </p>
      {run.errors.length ? (
        <Notice tone="warning">
          <strong>{plural(run.errors.length, 'turn', 'turns')} could not be replayed (an engine error):</strong>
          {run.errors.map((error) => (
            <span key={`${error.thread_id}-${error.seq}`} className={workingStyles.detail}>
              thread {error.thread_id} seq {error.seq}: {error.error}
            </span>
          ))}
        </Notice>
      ) : null}
      {summary.changed === 0 ? (
        <Notice tone="success">No turn would be answered differently with this config.</Notice>
      ) : (
        <ChangedTurns turns={run.changed} truncated={run.changed_truncated} total={summary.changed} openId={openId} onOpen={openTurn} />
      )}
      {open ? <TurnComparison turn={open} onClose={() => openTurn(null)} /> : null}
    </>
  );
}

function ChangedTurns({
  turns,
  truncated,
  total,
  openId,
  onOpen,
}: {
  turns: RegressChangedTurn[];
  truncated: boolean;
  total: number;
  openId: string | null;
  onOpen: (turnId: string) => void;
}) {
  return (
    <>
      <h3 className={frame.sectionTitle}>Changed turns</h3>
      {truncated ? (
        <p className={styles.hint}>
          The first {turns.length} of {total} changed turns are kept; narrow the selection to see the others.
        </p>
      ) : null}
      <TableScroll label="Changed turns">
        <table className={table.table}>
          <thead>
            <tr>
              <th scope="col">Customer message</th>
              <th scope="col">Changed</th>
              <th scope="col">Thread</th>
              <th scope="col" className={table.number}>
                Seq
              </th>
              <th scope="col">
                <span className="visually-hidden">Open</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {turns.map((turn) => (
              <tr key={turn.turn_id} aria-current={turn.turn_id === openId ? 'true' : undefined}>
                <td data-label="Customer message" className={table.lead}>
                  {turn.message}
                </td>
                <td data-label="Changed">{turn.changes.map(kindLabel).join(', ')}</td>
                <td data-label="Thread" className={table.mono}>
                  <Link to={`/conversations/${encodeURIComponent(turn.thread_id)}`}>{turn.thread_id}</Link>
                </td>
                <td data-label="Seq" className={table.number}>
                  {turn.seq}
                </td>
                <td>
                  <Button size="small" onClick={() => onOpen(turn.turn_id)} aria-label={`Compare the turn at seq ${turn.seq}`}>
                    Compare
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
    </>
  );
}

/** One changed turn: the recorded and the replayed decision side by side, what changed marked. */
export function TurnComparison({ turn, onClose }: { turn: RegressChangedTurn; onClose: () => void }) {
  return (
    <section className={styles.comparison} aria-labelledby="regress-turn-title">
      <div className={frame.header}>
        <h3 className={frame.sectionTitle} id="regress-turn-title">
          Turn at seq {turn.seq}
        </h3>
        <Button size="small" onClick={onClose}>
          Close
        </Button>
      </div>
      <p>
        <span className={styles.hint}>Customer, {turn.occurred_at}:</span> {turn.message}
      </p>
      <TableScroll label="Recorded and replayed turn">
        <table className={`${table.table} ${styles.sideBySide}`}>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Recorded</th>
              <th scope="col">With the new config</th>
            </tr>
          </thead>
          <tbody>
            {comparedFields(turn.recorded, turn.replayed, turn.changes).map((row) => (
              <tr key={row.field} className={row.changed ? styles.changed : undefined}>
                <th scope="row">
                  {row.label}
                  {row.changed ? <span className={styles.mark}> (changed)</span> : null}
                </th>
                <td data-label="Recorded">
                  <pre className={styles.value}>{row.recorded}</pre>
                </td>
                <td data-label="With the new config">
                  <pre className={styles.value}>{row.replayed}</pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
    </section>
  );
}
