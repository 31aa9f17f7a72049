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
}

function text(step: ReplayStep, name: string): string | null {
  const value = step[name];
  return typeof value === 'string' ? value : null;
}

export function deskState(steps: readonly ReplayStep[]): DeskState {
  let state: DeskState = { holder: null, resolved: false, known: false };
  for (const step of steps) {
    switch (step.kind) {
      case 'conversation.assigned': {
        const id = text(step, 'operator_id');
        state = {
          holder: id ? { id, name: text(step, 'name') ?? 'an operator' } : null,
          resolved: false,
          known: true,
        };
        break;
      }
      case 'conversation.released':
        state = { holder: null, resolved: false, known: true };
        break;
      case 'conversation.resolved':
        state = { holder: null, resolved: true, known: true };
        break;
      case 'message.received':
      case 'conversation.escalated':
        // The customer wrote again, or it was escalated anew: not resolved any more.
        state = { ...state, resolved: false };
        break;
    }
  }
  return state;
}

/** A desk event as a replay step (`seq` beside the envelope's fields). */
export function eventStep({ seq, event }: DeskEvent): ReplayStep {
  return { ...event, seq };
}

/** The fetched steps with those that arrived live since, once each, in stream order. */
export function mergeSteps(fetched: readonly ReplayStep[], live: readonly ReplayStep[]): ReplayStep[] {
  const bySeq = new Map<number, ReplayStep>();
  for (const step of fetched) bySeq.set(step.seq, step);
  for (const step of live) if (!bySeq.has(step.seq)) bySeq.set(step.seq, step);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}
