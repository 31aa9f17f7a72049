import type { AnalyticsRange, AnalyticsReport, AnalyticsSummary } from '../../api/types';

/** Shown for a number the server could not give (a rate without conversations, say). */
export const NO_VALUE = '—';

export const RANGE_LABELS: Record<AnalyticsRange, string> = {
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
};

const count = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const seconds = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

function finite(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export function formatCount(value: number | null | undefined): string {
  return finite(value) ? count.format(value) : NO_VALUE;
}

/** 0.3333 → "33.3%"; `null` (nothing to divide by) → "—". */
export function formatRate(value: number | null | undefined): string {
  return finite(value) ? percent.format(value) : NO_VALUE;
}

/** 250 → "250 ms", 2500 → "2.5 s"; `null` (no replies) → "—". */
export function formatLatency(ms: number | null | undefined): string {
  if (!finite(ms)) return NO_VALUE;
  return ms < 1000 ? `${count.format(ms)} ms` : `${seconds.format(ms / 1000)} s`;
}

/** The window saw no traffic at all: the page says so instead of drawing empty charts. */
export function isQuiet(report: AnalyticsReport): boolean {
  const { conversations, messages, turns, replies } = report.totals;
  return conversations === 0 && messages === 0 && turns === 0 && replies === 0;
}

export interface Metric {
  /** The card's accessible name and title. */
  name: string;
  value: string;
  /** The number behind `value` (`null` when there is none), for `data-value`. */
  raw: number | null;
  hint: string;
}

function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** The dashboard's cards, in order. */
export function metricsOf(totals: AnalyticsSummary): Metric[] {
  const t = totals;
  return [
    {
      name: 'Conversations',
      value: formatCount(t.conversations),
      raw: t.conversations,
      hint: 'started in this range',
    },
    { name: 'Messages', value: formatCount(t.messages), raw: t.messages, hint: 'sent by customers' },
    {
      name: 'Resolution rate',
      value: formatRate(t.resolution_rate),
      raw: t.resolution_rate,
      hint:
        t.conversations > 0
          ? `${plural(t.resolutions, 'resolution', 'resolutions')} of ${plural(t.conversations, 'conversation', 'conversations')}`
          : 'no conversations to rate',
    },
    {
      name: 'Escalation rate',
      value: formatRate(t.escalation_rate),
      raw: t.escalation_rate,
      hint:
        t.conversations > 0
          ? `${plural(t.escalations, 'escalation', 'escalations')} to a person`
          : 'no conversations to rate',
    },
    {
      name: 'Tool error rate',
      value: formatRate(t.tool_error_rate),
      raw: t.tool_error_rate,
      hint:
        t.tool_calls > 0
          ? `${formatCount(t.tool_errors)} of ${plural(t.tool_calls, 'tool call', 'tool calls')} failed`
          : 'no tool calls yet',
    },
    {
      name: 'Reply latency p50',
      value: formatLatency(t.reply_latency_p50_ms),
      raw: t.reply_latency_p50_ms,
      hint: t.reply_latency_p50_ms === null ? 'no replies yet' : 'half of the replies came within this',
    },
    {
      name: 'Reply latency p95',
      value: formatLatency(t.reply_latency_p95_ms),
      raw: t.reply_latency_p95_ms,
      hint: t.reply_latency_p95_ms === null ? 'no replies yet' : '95% of the replies came within this',
    },
  ];
}

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** The x-axis label of a bucket: its hour for hourly buckets, its date for daily ones. */
export function bucketLabel(start: string, bucket: AnalyticsReport['bucket']): string {
  const date = new Date(start);
  if (Number.isNaN(date.getTime())) return start;
  return bucket === 'day' ? dayLabel.format(date) : hourLabel.format(date);
}
