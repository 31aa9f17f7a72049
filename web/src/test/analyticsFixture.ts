import type { AnalyticsReport, AnalyticsSummary } from '../api/types';

const ZERO: AnalyticsSummary = {
  conversations: 0,
  messages: 0,
  turns: 0,
  replies: 0,
  resolutions: 0,
  escalations: 0,
  failures: 0,
  tool_calls: 0,
  tool_errors: 0,
  prompt_tokens: 0,
  completion_tokens: 0,
  resolution_rate: null,
  escalation_rate: null,
  tool_error_rate: null,
  reply_latency_p50_ms: null,
  reply_latency_p95_ms: null,
  reply_latency_mean_ms: null,
};

export function summary(fields: Partial<AnalyticsSummary> = {}): AnalyticsSummary {
  return { ...ZERO, ...fields };
}

/** The example answer of docs/rest.md (`GET /api/analytics`), two hourly buckets. */
export function busyReport(): AnalyticsReport {
  return {
    from: '2026-11-25T10:00:00Z',
    to: '2026-11-25T12:00:00Z',
    bucket: 'hour',
    totals: summary({
      conversations: 3,
      messages: 5,
      turns: 5,
      replies: 4,
      resolutions: 1,
      escalations: 1,
      failures: 1,
      tool_calls: 2,
      tool_errors: 1,
      prompt_tokens: 2700,
      completion_tokens: 100,
      resolution_rate: 1 / 3,
      escalation_rate: 1 / 3,
      tool_error_rate: 0.5,
      reply_latency_p50_ms: 100,
      reply_latency_p95_ms: 2500,
      reply_latency_mean_ms: 407.5,
    }),
    agents: [
      {
        agent: 'billing',
        ...summary({
          turns: 2,
          replies: 2,
          tool_calls: 0,
          prompt_tokens: 2700,
          completion_tokens: 100,
          reply_latency_p50_ms: 50,
          reply_latency_p95_ms: 100,
          reply_latency_mean_ms: 60,
        }),
      },
      {
        agent: 'orders',
        ...summary({ turns: 3, replies: 2, tool_calls: 2, tool_errors: 1, tool_error_rate: 0.5, reply_latency_p50_ms: 250 }),
      },
    ],
    series: [
      {
        start: '2026-11-25T10:00:00Z',
        ...summary({ conversations: 2, messages: 3, replies: 3, prompt_tokens: 1200, completion_tokens: 80 }),
      },
      {
        start: '2026-11-25T11:00:00Z',
        ...summary({ conversations: 1, messages: 2, replies: 1, prompt_tokens: 1500, completion_tokens: 20 }),
      },
    ],
    desk: {
      handoffs: 2,
      first_replies: 2,
      first_reply_p50_s: 45,
      first_reply_p95_s: 150,
      operators: [{ id: '00000000-0000-0000-0000-000000000001', name: 'Anna', taken: 2, replies: 3, resolved: 1 }],
    },
  };
}

/** A window without traffic: zeros and null rates, as the server sends them. */
export function quietReport(): AnalyticsReport {
  return {
    from: '2026-11-24T12:00:00Z',
    to: '2026-11-25T12:00:00Z',
    bucket: 'hour',
    totals: summary(),
    agents: [],
    series: [
      { start: '2026-11-25T10:00:00Z', ...summary() },
      { start: '2026-11-25T11:00:00Z', ...summary() },
    ],
    desk: { handoffs: 0, first_replies: 0, first_reply_p50_s: null, first_reply_p95_s: null, operators: [] },
  };
}
