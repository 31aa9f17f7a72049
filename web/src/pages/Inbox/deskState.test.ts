import { describe, expect, it } from 'vitest';
import type { ReplayStep } from '../../api/types';
import { deskState, mergeSteps } from './deskState';

const step = (seq: number, kind: string, fields: Record<string, unknown> = {}): ReplayStep => ({
  seq,
  kind,
  occurred_at: '2026-12-06T10:00:00Z',
  turn_id: `t${seq}`,
  event_id: `e${seq}`,
  ...fields,
});

describe('desk state from the steps', () => {
  it('follows who holds the conversation through take-over, hand-back and resolve', () => {
    const steps = [
      step(1, 'conversation.escalated', { reason: 'customer_asked' }),
      step(2, 'conversation.assigned', { operator_id: 'op-1', name: 'Alex' }),
    ];
    expect(deskState(steps)).toEqual({ holder: { id: 'op-1', name: 'Alex' }, resolved: false, known: true, last: 'assigned' });
    expect(deskState([...steps, step(3, 'conversation.released', { operator_id: 'op-1', name: 'Alex' })])).toMatchObject({
      holder: null,
      last: 'released',
    });
    const resolved = [...steps, step(3, 'conversation.resolved', { resolved_by: 'operator', operator_id: 'op-1' })];
    expect(deskState(resolved)).toMatchObject({ holder: null, resolved: true });
    // The customer writing again reopens it.
    expect(deskState([...resolved, step(4, 'message.received', { content: 'one more thing' })]).resolved).toBe(false);
  });

  it('takes a version 2 reply that ends its turn escalated for the escalation', () => {
    const escalation = { reason: 'keyword', detail: 'keyword "lawyer"' };
    const v1 = [
      step(1, 'message.received', { content: 'I want a lawyer' }),
      step(2, 'conversation.escalated', { ...escalation, agent: 'orders' }),
      step(3, 'agent.replied', { text: 'A person will answer you here.', agent: 'orders' }),
      step(4, 'turn.completed', { outcome: 'escalated', latency_ms: 5, message_seq: 1 }),
    ];
    const v2 = [
      step(1, 'message.received', { content: 'I want a lawyer' }),
      step(2, 'agent.replied', { text: 'A person will answer you here.', agent: 'orders', outcome: 'escalated', latency_ms: 5, message_seq: 1, escalation }),
    ];
    expect(deskState(v2)).toEqual(deskState(v1));
    expect(deskState(v2).last).toBe('escalated');
    // A reply that ends its turn otherwise changes nothing.
    expect(deskState([step(1, 'agent.replied', { text: 'Hi', outcome: 'replied', latency_ms: 1, message_seq: 1 })]).last).toBeNull();
  });

  it('knows nothing without lifecycle steps, so the summary decides', () => {
    expect(deskState([step(1, 'message.received', { content: 'hi' })]).known).toBe(false);
  });

  it('merges live steps into the fetched ones once each, in stream order', () => {
    const merged = mergeSteps([step(1, 'message.received'), step(3, 'agent.replied')], [step(3, 'agent.replied'), step(2, 'turn.started')]);
    expect(merged.map((s) => s.seq)).toEqual([1, 2, 3]);
  });
});
