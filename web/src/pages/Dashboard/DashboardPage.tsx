import { useCallback, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import { getAnalytics } from '../../api/client';
import { ANALYTICS_RANGES, type AnalyticsRange, type AnalyticsReport } from '../../api/types';
import { useOperatorResource } from '../../api/useOperatorResource';
import { Button } from '../../components/Button/Button';
import { tableStyles as table } from '../../components/DataTable/DataTable';
import { Notice } from '../../components/Notice/Notice';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { formatDateTime, formatTime } from '../../lib/format';
import { useInterval } from '../../lib/useInterval';
import { AgentTable } from './AgentTable';
import { DeskSection } from './DeskSection';
import styles from './DashboardPage.module.css';
import { MetricCard } from './MetricCard';
import { bucketLabel, formatCount, formatLatency, isQuiet, metricsOf, RANGE_LABELS } from './metrics';
import { RangeSelector } from './RangeSelector';
import { SeriesChart } from './SeriesChart';

/** How often the numbers are fetched again while auto-refresh is on. */
export const REFRESH_EVERY_MS = 10_000;

function rangeFrom(params: URLSearchParams): AnalyticsRange {
  const raw = params.get('range');
  return ANALYTICS_RANGES.find((range) => range === raw) ?? '24h';
}

function Charts({ report }: { report: AnalyticsReport }) {
  const labels = report.series.map((point) => bucketLabel(point.start, report.bucket));
  const per = report.bucket === 'day' ? 'per day' : 'per hour';
  const totals = report.totals;
  return (
    <div className={styles.charts}>
      <SeriesChart
        title={`Traffic ${per}`}
        summary={`Line chart of conversations, messages and replies ${per}. In total ${formatCount(totals.conversations)} conversations, ${formatCount(totals.messages)} messages, ${formatCount(totals.replies)} replies.`}
        type="line"
        labels={labels}
        integer
        format={formatCount}
        series={[
          { label: 'Conversations', values: report.series.map((p) => p.conversations), color: '--tone-user' },
          { label: 'Messages', values: report.series.map((p) => p.messages), color: '--tone-tool' },
          { label: 'Replies', values: report.series.map((p) => p.replies), color: '--tone-agent' },
        ]}
      />
      <SeriesChart
        title={`Outcomes ${per}`}
        summary={`Bar chart of resolutions, escalations, failed turns and tool errors ${per}. In total ${formatCount(totals.resolutions)} resolutions, ${formatCount(totals.escalations)} escalations, ${formatCount(totals.failures)} failed turns, ${formatCount(totals.tool_errors)} tool errors.`}
        type="bar"
        labels={labels}
        integer
        format={formatCount}
        series={[
          { label: 'Resolutions', values: report.series.map((p) => p.resolutions), color: '--tone-agent' },
          { label: 'Escalations', values: report.series.map((p) => p.escalations), color: '--tone-escalation' },
          { label: 'Failed turns', values: report.series.map((p) => p.failures), color: '--tone-failure' },
          { label: 'Tool errors', values: report.series.map((p) => p.tool_errors), color: '--tone-tool' },
        ]}
      />
      <SeriesChart
        title={`Model tokens ${per}`}
        summary={`Bar chart of the tokens the model read (prompt) and wrote (completion) ${per}. In total ${formatCount(totals.prompt_tokens)} prompt and ${formatCount(totals.completion_tokens)} completion tokens.`}
        type="bar"
        labels={labels}
        integer
        format={formatCount}
        series={[
          { label: 'Prompt tokens', values: report.series.map((p) => p.prompt_tokens), color: '--tone-user' },
          { label: 'Completion tokens', values: report.series.map((p) => p.completion_tokens), color: '--tone-agent' },
        ]}
      />
      <SeriesChart
        title={`Reply latency ${per}`}
        summary={`Line chart of the reply latency ${per}, 50th and 95th percentile. Over the whole range: ${formatLatency(totals.reply_latency_p50_ms)} and ${formatLatency(totals.reply_latency_p95_ms)}.`}
        type="line"
        labels={labels}
        format={formatLatency}
        series={[
          { label: 'p50', values: report.series.map((p) => p.reply_latency_p50_ms), color: '--tone-user' },
          { label: 'p95', values: report.series.map((p) => p.reply_latency_p95_ms), color: '--tone-escalation' },
        ]}
      />
    </div>
  );
}

export function DashboardPage() {
  const [searchParams, setSearchParams] = useSearchParams();
  const range = rangeFrom(searchParams);
  const [autoRefresh, setAutoRefresh] = useState(true);
  // A new range drops the old numbers at once: they do not answer it.
  const {
    data: report,
    loadedAt: updatedAt,
    reload: load,
    request,
  } = useOperatorResource(useCallback(() => getAnalytics(range), [range]));

  // Paused while the page waits for a token or shows an error, so neither is asked again and
  // again behind the reader's back; "Try again" or "Refresh" resumes.
  useInterval(load, REFRESH_EVERY_MS, autoRefresh && !request.needsToken && !request.error);

  // In the address, so a range can be bookmarked and Back returns to the previous one.
  const setRange = (next: AnalyticsRange) => setSearchParams(next === '24h' ? {} : { range: next });
  const quiet = report ? isQuiet(report) : false;

  return (
    <section className={frame.page} aria-labelledby="dashboard-title">
      <div className={frame.header}>
        <h1 className={frame.title} id="dashboard-title">
          Dashboard
        </h1>
        <div className={frame.actions}>
          <RangeSelector value={range} onChange={setRange} />
          <Button onClick={load}>Refresh</Button>
          <label className={styles.toggle}>
            <input type="checkbox" checked={autoRefresh} onChange={(event) => setAutoRefresh(event.target.checked)} />
            Refresh every {REFRESH_EVERY_MS / 1000} seconds
          </label>
        </div>
      </div>
      <p className={frame.intro}>
        {report ? (
          <>
            {RANGE_LABELS[range]}: {formatDateTime(report.from)} to {formatDateTime(report.to)}, per{' '}
            {report.bucket}.{updatedAt ? ` Updated at ${formatTime(updatedAt.toISOString())}.` : ''}
          </>
        ) : (
          RANGE_LABELS[range]
        )}
      </p>

      <RequestStatus request={request} onRetry={load} />
      {request.loading && !report ? <p role="status">Loading…</p> : null}

      {report ? (
        <>
          {quiet ? (
            <Notice>No conversations in this range yet. The numbers and charts fill in as customers start chatting.</Notice>
          ) : null}

          <section aria-labelledby="totals-title">
            <h2 className="visually-hidden" id="totals-title">
              Totals
            </h2>
            <div className={styles.cards}>
              {metricsOf(report.totals).map((metric) => (
                <MetricCard key={metric.name} metric={metric} />
              ))}
            </div>
          </section>

          {quiet ? null : (
            <section aria-labelledby="over-time-title">
              <h2 className="visually-hidden" id="over-time-title">
                Over time
              </h2>
              <Charts report={report} />
            </section>
          )}

          <section className={styles.section} aria-labelledby="agents-title">
            <h2 className={frame.sectionTitle} id="agents-title">
              Per agent
            </h2>
            {report.agents.length === 0 ? (
              <p className={table.muted}>No agent has answered in this range yet.</p>
            ) : (
              <AgentTable agents={report.agents} />
            )}
          </section>

          <section className={styles.section} aria-labelledby="desk-title">
            <h2 className={frame.sectionTitle} id="desk-title">
              People at the desk
            </h2>
            <DeskSection desk={report.desk} />
          </section>
        </>
      ) : null}
    </section>
  );
}

