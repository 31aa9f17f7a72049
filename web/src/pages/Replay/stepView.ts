import { kindLabel } from '../../api/eventKinds';
import { replyEnd, resultCall, startedRouting, type ReplyEnd } from '../../api/turnEvents';
import type { ReplayStep } from '../../api/types';

/**
 * A fact a version 1 turn wrote as a step of its own (`kind`) and version 2 writes on another
 * step: drawn inside that step as the version 1 step was, with its title, words and facts.
 */
export interface StepAside {
  kind: string;
  title: string;
  text: string | null;
  facts: string[];
}

/** What the timeline shows of one step: a title, its words, short facts, and raw JSON to expand. */
export interface StepView {
  title: string;
  /** The step's text: a message, a reply, an error, a question. */
  text: string | null;
  /** Short labelled facts: "HTTP 200", "14 ms", "read". */
  facts: string[];
  /** Raw values behind a toggle named `label` ("Parameters of getOrder"). */
  expanders: Array<{ label: string; value: unknown }>;
  /** A dead letter this step made or came from. */
  deadLetterId: number | null;
  /** What a version 2 reply ended its turn with: a confirmation question, a hand-over to a person. */
  aside: StepAside | null;
}

/** The fields every step has; the rest are the kind's own. */
const COMMON_FIELDS = new Set(['seq', 'occurred_at', 'kind', 'turn_id', 'event_id', 'thread_id', 'schema_version']);

function str(step: ReplayStep, name: string): string | null {
  const value = step[name];
  return typeof value === 'string' ? value : null;
}

function num(step: ReplayStep, name: string): number | null {
  const value = step[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function has(step: ReplayStep, name: string): boolean {
  return step[name] !== undefined && step[name] !== null;
}

/** "14 ms", "1 attempt", "HTTP 200"; nothing for a missing number. */
function timing(step: ReplayStep): string[] {
  const facts: string[] = [];
  const status = num(step, 'status');
  const latency = num(step, 'latency_ms');
  const attempts = num(step, 'attempts');
  if (status !== null) facts.push(`HTTP ${status}`);
  if (latency !== null) facts.push(`took ${latency} ms`);
  if (attempts !== null) facts.push(`${attempts} attempt${attempts === 1 ? '' : 's'}`);
  return facts;
}

/** The display name an operator event carries (never the email). */
function operatorName(step: ReplayStep): string {
  return str(step, 'name') ?? 'an operator';
}

function present(...facts: Array<string | null | false>): string[] {
  return facts.filter((fact): fact is string => typeof fact === 'string' && fact.length > 0);
}

/**
 * A tool result's own record of its call (version 2: `params`, and `permission` unless the call
 * was refused), shown as `tool.called` shows them; nothing for a version 1 result.
 */
function callOf(step: ReplayStep, tool: string): Pick<StepView, 'facts' | 'expanders'> {
  const call = resultCall(step);
  if (!call) return { facts: [], expanders: [] };
  return { facts: present(call.permission), expanders: [{ label: `Parameters of ${tool}`, value: call.params }] };
}

/** What a version 2 reply ended its turn with, drawn as the version 1 step of that fact. */
function replyAside(end: ReplyEnd): StepAside | null {
  if (end.escalation) {
    const kind = 'conversation.escalated';
    return { kind, title: kindLabel(kind), text: end.escalation.detail, facts: present(end.escalation.reason) };
  }
  if (end.pending) {
    const kind = 'confirmation.requested';
    return { kind, title: `${kindLabel(kind)}: ${end.pending.tool ?? 'tool'}`, text: null, facts: [] };
  }
  return null;
}

export function stepView(step: ReplayStep): StepView {
  const tool = str(step, 'tool') ?? 'tool';
  const deadLetterId = num(step, 'dead_letter_id');
  const base: StepView = { title: kindLabel(step.kind), text: null, facts: [], expanders: [], deadLetterId, aside: null };

  switch (step.kind) {
    case 'message.received':
      return { ...base, text: str(step, 'content') };
    case 'message.redriven':
      return {
        ...base,
        text: str(step, 'content'),
        facts: present(has(step, 'original_seq') && `first stored as #${num(step, 'original_seq')}`),
      };
    case 'turn.started': {
      const confirming = step.confirming;
      // Version 2 writes the routing here (version 1: `agent.routed`).
      const routing = startedRouting(step);
      return {
        ...base,
        title: routing ? `${base.title}: routed to ${routing.agent}` : base.title,
        text: routing?.reason ?? null,
        facts: present(has(step, 'message_seq') && `answers #${num(step, 'message_seq')}`),
        expanders: confirming ? [{ label: 'Write waiting for confirmation', value: confirming }] : [],
      };
    }
    case 'agent.routed':
      return { ...base, title: `Routed to ${str(step, 'agent') ?? 'an agent'}`, text: str(step, 'reason') };
    case 'tool.called':
      return {
        ...base,
        title: `Tool called: ${tool}`,
        facts: present(str(step, 'permission'), str(step, 'call_id')),
        expanders: [{ label: `Parameters of ${tool}`, value: step.params ?? {} }],
      };
    case 'tool.succeeded': {
      const call = callOf(step, tool);
      return {
        ...base,
        title: `Tool succeeded: ${tool}`,
        facts: [...call.facts, ...timing(step)],
        expanders: [...call.expanders, { label: `Result of ${tool}`, value: step.result ?? null }],
      };
    }
    case 'tool.failed': {
      const call = callOf(step, tool);
      return {
        ...base,
        title: `Tool failed: ${tool}`,
        text: str(step, 'error'),
        facts: [...call.facts, ...present(str(step, 'category')), ...timing(step)],
        expanders: call.expanders,
      };
    }
    case 'confirmation.requested':
      return {
        ...base,
        title: `Confirmation requested: ${tool}`,
        text: str(step, 'prompt'),
        facts: present(str(step, 'agent')),
        expanders: [{ label: `Parameters of ${tool}`, value: step.params ?? {} }],
      };
    case 'conversation.escalated':
      return { ...base, text: str(step, 'detail'), facts: present(str(step, 'reason'), str(step, 'agent')) };
    case 'agent.replied': {
      const reply = { ...base, text: str(step, 'text'), facts: present(str(step, 'agent'), str(step, 'engine')) };
      // Version 2 ends the turn here: what version 1 wrote in `turn.completed` (outcome, latency,
      // the write waiting for a "yes") and in `conversation.escalated`.
      const end = replyEnd(step);
      if (!end) return reply;
      return {
        ...reply,
        facts: [
          ...reply.facts,
          ...present(end.outcome, end.latencyMs !== null && `reply after ${end.latencyMs} ms`),
        ],
        expanders: end.pending ? [{ label: 'Write waiting for confirmation', value: step.pending }] : [],
        aside: replyAside(end),
      };
    }
    case 'turn.completed':
      return {
        ...base,
        facts: present(
          str(step, 'outcome'),
          has(step, 'latency_ms') && `reply after ${num(step, 'latency_ms')} ms`,
        ),
        expanders: step.pending ? [{ label: 'Write waiting for confirmation', value: step.pending }] : [],
      };
    case 'turn.failed':
      return {
        ...base,
        text: str(step, 'error'),
        facts: present(str(step, 'category'), has(step, 'attempts') && `${num(step, 'attempts')} attempts`),
      };
    case 'conversation.resolved': {
      const name = str(step, 'name');
      return {
        ...base,
        title: name ? `Resolved by ${name}` : base.title,
        text: str(step, 'note'),
        facts: present(str(step, 'resolved_by') && `by ${str(step, 'resolved_by')}`),
      };
    }
    case 'operator.replied':
      return { ...base, title: `Reply by ${operatorName(step)}`, text: str(step, 'text') };
    case 'note.added':
      return {
        ...base,
        title: `Internal note by ${operatorName(step)}`,
        text: str(step, 'text'),
        facts: ['only operators see this'],
      };
    case 'conversation.assigned':
      return { ...base, title: `Taken over by ${operatorName(step)}` };
    case 'conversation.released':
      return { ...base, title: `Handed back to the agents by ${operatorName(step)}` };
    case 'turn.held':
      return {
        ...base,
        facts: present(str(step, 'reason'), str(step, 'name') && `held by ${str(step, 'name')}`),
      };
    default: {
      // A kind this page does not know yet: its words if it has any, everything else raw.
      const extra = Object.fromEntries(Object.entries(step).filter(([key]) => !COMMON_FIELDS.has(key)));
      return {
        ...base,
        text: str(step, 'content') ?? str(step, 'text'),
        expanders: Object.keys(extra).length > 0 ? [{ label: 'Details', value: extra }] : [],
      };
    }
  }
}

/** Milliseconds from the previous step, for the timeline's "+12 ms"; null for the first or unreadable times. */
export function gapMs(previous: ReplayStep | undefined, step: ReplayStep): number | null {
  if (!previous) return null;
  const gap = Date.parse(step.occurred_at) - Date.parse(previous.occurred_at);
  return Number.isFinite(gap) ? gap : null;
}

/** "+12 ms", "+3.4 s", "+5 min". */
export function formatGap(ms: number): string {
  if (ms < 1000) return `+${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `+${Math.round(ms / 60_000)} min`;
  return `+${(ms / 3_600_000).toFixed(1)} h`;
}
