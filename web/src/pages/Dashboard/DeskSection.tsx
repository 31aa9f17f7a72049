import type { DeskSummary } from '../../api/types';
import { TableScroll, tableStyles as table } from '../../components/DataTable/DataTable';
import { formatCount } from './metrics';

/** A wait in words: seconds, or minutes and seconds. */
export function formatWait(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
}

/** What people did at the desk: handoffs, the wait to the first human reply, per operator. */
export function DeskSection({ desk }: { desk: DeskSummary }) {
  return (
    <>
      <p>
        {formatCount(desk.handoffs)} handoffs to a person. Time to the first human reply: p50{' '}
        {formatWait(desk.first_reply_p50_s)}, p95 {formatWait(desk.first_reply_p95_s)} (
        {formatCount(desk.first_replies)} waits).
      </p>
      {desk.operators.length === 0 ? (
        <p className={table.muted}>No operator took a conversation over in this range.</p>
      ) : (
        <TableScroll label="Operator numbers">
          <table className={table.table}>
            <thead>
              <tr>
                <th scope="col">Operator</th>
                <th scope="col" className={table.number}>
                  Taken over
                </th>
                <th scope="col" className={table.number}>
                  Replies
                </th>
                <th scope="col" className={table.number}>
                  Resolved
                </th>
              </tr>
            </thead>
            <tbody>
              {desk.operators.map((operator) => (
                <tr key={operator.id}>
                  <th scope="row" className={table.lead} data-label="Operator">
                    {operator.name}
                  </th>
                  <td className={table.number} data-label="Taken over">
                    {formatCount(operator.taken)}
                  </td>
                  <td className={table.number} data-label="Replies">
                    {formatCount(operator.replies)}
                  </td>
                  <td className={table.number} data-label="Resolved">
                    {formatCount(operator.resolved)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
    </>
  );
}
