import { replyEnd } from '../../api/turnEvents';
import type { DeskEvent, OperatorRef, ReplayStep } from '../../api/types';

/**
 * What the desk knows of one conversation, from its steps in stream order: who holds it now and
 * whether it is resolved. Read from the events rather than the summary, because the events
 * arrive live while the read models follow a moment behind.
 */
export interface DeskState {
  holder: OperatorRef | null;
  resolved: boolean;
  /** Any step said who holds it (else the summary's `assignee` is the better guess). */
  known: boolean;
  /** The latest step that changed who answers: escalated to people, taken, handed back, resolved. */
  last: 'escalated' | 'assigned' | 'released' | 'resolved' | null;
}

function text(step: ReplayStep, name: string): string | null {
  const value = step[name];
  return typeof value === 'string' ? value : null;
}

export function deskState(steps: readonly ReplayStep[]): DeskState {
  let state: DeskState = { holder: null, resolved: false, known: false, last: null };
  for (const step of steps) {
    switch (step.kind) {
      case 'conversation.assigned': {
        const id = text(step, 'operator_id');
        state = {
          holder: id ? { id, name: text(step, 'name') ?? 'an operator' } : null,
          resolved: false,
          known: true,
          last: 'assigned',
        };
        break;
      }
      case 'conversation.released':
        state = { holder: null, resolved: false, known: true, last: 'released' };
        break;
      case 'conversation.resolved':
        state = { holder: null, resolved: true, known: true, last: 'resolved' };
        break;
      case 'conversation.escalated':
        state = { ...state, resolved: false, last: 'escalated' };
        break;
      case 'agent.replied':
        // Version 2 of the events writes the escalation on the reply that ends the turn.
        if (replyEnd(step)?.escalation) state = { ...state, resolved: false, last: 'escalated' };
        break;
      case 'message.received':
        // The customer wrote again: not resolved any more.
        state = { ...state, resolved: false };
        break;
    }
  }
  return state;
}

/** A desk event as a replay step (`seq` beside the envelope's fields). */
export function eventStep({ seq, event }: DeskEvent): ReplayStep {
  // Every stored event has a turn id (an operator's, one of its own).
  return { ...event, turn_id: event.turn_id ?? '', seq };
}

/** The fetched steps with those that arrived live since, once each, in stream order. */
export function mergeSteps(fetched: readonly ReplayStep[], live: readonly ReplayStep[]): ReplayStep[] {
  const bySeq = new Map<number, ReplayStep>();
  for (const step of fetched) bySeq.set(step.seq, step);
  for (const step of live) if (!bySeq.has(step.seq)) bySeq.set(step.seq, step);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}
