import type { AgentSummary } from '../../api/types';
import { TableScroll, tableStyles as table } from '../../components/DataTable/DataTable';
import { formatCount, formatLatency, formatRate } from './metrics';

const COLUMNS: ReadonlyArray<{ name: string; value: (agent: AgentSummary) => string }> = [
  { name: 'Turns', value: (a) => formatCount(a.turns) },
  { name: 'Replies', value: (a) => formatCount(a.replies) },
  { name: 'Resolutions', value: (a) => formatCount(a.resolutions) },
  { name: 'Escalations', value: (a) => formatCount(a.escalations) },
  { name: 'Failures', value: (a) => formatCount(a.failures) },
  { name: 'Tool calls', value: (a) => formatCount(a.tool_calls) },
  { name: 'Tool error rate', value: (a) => formatRate(a.tool_error_rate) },
  { name: 'Prompt tokens', value: (a) => formatCount(a.prompt_tokens) },
  { name: 'Completion tokens', value: (a) => formatCount(a.completion_tokens) },
  { name: 'Latency p50', value: (a) => formatLatency(a.reply_latency_p50_ms) },
  { name: 'Latency p95', value: (a) => formatLatency(a.reply_latency_p95_ms) },
  { name: 'Latency mean', value: (a) => formatLatency(a.reply_latency_mean_ms === null ? null : Math.round(a.reply_latency_mean_ms)) },
];

/** One row per agent; each row is headed by the agent's name (`getByRole('row', { name: /orders/ })`). */
export function AgentTable({ agents }: { agents: AgentSummary[] }) {
  return (
    <TableScroll label="Agent numbers">
      <table className={table.table}>
        <thead>
          <tr>
            <th scope="col">Agent</th>
            {COLUMNS.map((column) => (
              <th scope="col" className={table.number} key={column.name}>
                {column.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {agents.map((agent) => (
            <tr key={agent.agent}>
              <th scope="row" className={table.lead} data-label="Agent">
                {agent.agent}
              </th>
              {COLUMNS.map((column) => (
                <td className={table.number} data-label={column.name} key={column.name}>
                  {column.value(agent)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}
