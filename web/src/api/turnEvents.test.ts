import { describe, expect, it } from 'vitest';
import { carriesCall, replyEnd, resultCall, startedRouting } from './turnEvents';

const v2 = (kind: string, fields: Record<string, unknown> = {}) => ({ kind, schema_version: 2, ...fields });
const v1 = (kind: string, fields: Record<string, unknown> = {}) => ({ kind, schema_version: 1, ...fields });
const pending = { agent: 'orders', tool: 'cancelOrder', params: { order_id: 'ORD-1001' } };

describe('reading a turn’s events of either version', () => {
  it('reads the routing on a version 2 turn.started', () => {
    expect(startedRouting(v2('turn.started', { message_seq: 1, agent: 'orders', reason: 'default' }))).toEqual({
      agent: 'orders',
      reason: 'default',
    });
    expect(startedRouting(v2('turn.started', { message_seq: 1 }))).toBeNull();
  });

  it('reads a version 2 tool result’s call, with its permission unless the call was refused', () => {
    const read = v2('tool.succeeded', { call_id: 'tool-1', tool: 'getOrder', params: { order_id: 'ORD-1' }, permission: 'read' });
    expect(resultCall(read)).toEqual({ params: { order_id: 'ORD-1' }, permission: 'read' });
    expect(carriesCall(read)).toBe(true);
    const refused = v2('tool.failed', { call_id: 'tool-1', tool: 'deleteOrder', params: {}, category: 'not_retryable' });
    expect(resultCall(refused)).toEqual({ params: {}, permission: null });
    expect(carriesCall(refused)).toBe(false);
  });

  it('reads how a version 2 reply ended its turn: outcome, latency, the write to confirm, the escalation', () => {
    const ended = { outcome: 'replied', latency_ms: 15, message_seq: 1 };
    expect(replyEnd(v2('agent.replied', { text: 'Hi', ...ended }))).toEqual({
      outcome: 'replied',
      latencyMs: 15,
      pending: null,
      escalation: null,
    });
    expect(replyEnd(v2('agent.replied', { text: 'Sure?', ...ended, outcome: 'awaiting_confirmation', pending }))?.pending).toEqual(pending);
    expect(
      replyEnd(v2('agent.replied', { text: 'A person', ...ended, outcome: 'escalated', escalation: { reason: 'keyword', detail: 'lawyer' } }))
        ?.escalation,
    ).toEqual({ reason: 'keyword', detail: 'lawyer' });
    // A reply that does not end its turn: a turn.completed follows it.
    expect(replyEnd(v2('agent.replied', { text: 'Hi' }))).toBeNull();
  });

  it('reads a version 1 event as version 1 did, whatever fields it carries', () => {
    expect(startedRouting(v1('turn.started', { agent: 'orders', reason: 'default' }))).toBeNull();
    expect(resultCall(v1('tool.succeeded', { params: {}, permission: 'read' }))).toBeNull();
    expect(carriesCall(v1('tool.succeeded', { params: {}, permission: 'read' }))).toBe(false);
    expect(replyEnd(v1('agent.replied', { outcome: 'escalated', pending, escalation: { reason: 'keyword' } }))).toBeNull();
  });
});
