/**
 * What a turn's events say, read the same way from both versions of the event catalogue
 * (docs/events.md), because streams keep the events of every version.
 *
 * Version 1 wrote the routing as `agent.routed`, a `tool.called` before every call, the
 * confirmation question and the hand-over to a person as events of their own
 * (`confirmation.requested`, `conversation.escalated`), and ended a turn with `turn.completed`
 * after the reply. Version 2 writes the routing on `turn.started` (`agent`, `reason`), a `read`
 * call as its result alone (with the call's `params` and `permission`), and ends the turn with the
 * `agent.replied` itself: its `outcome`, `latency_ms`, the `pending` write and the `escalation`.
 *
 * Every version 1 kind is still read as it was; the readers below return null for an event of
 * version 1, so the fields version 2 gave a meaning count only on a version 2 event (as the
 * workers' upcaster, `common/src/events/upcast.rs`, reads them).
 */

/** An event or a replay step: the kind and the kind's own fields. */
type Fields = { kind: string; [field: string]: unknown };

/** A write waiting for the user's "yes". */
export interface PendingWrite {
  agent: string | null;
  tool: string | null;
  params: unknown;
}

/** Why a person takes over, and the details for the operator. */
export interface Escalation {
  reason: string | null;
  detail: string | null;
}

/** How a version 2 `agent.replied` ended its turn (version 1: its `turn.completed`). */
export interface ReplyEnd {
  outcome: string;
  latencyMs: number | null;
  /** Outcome `awaiting_confirmation`: the reply's text is the question (version 1: `confirmation.requested`). */
  pending: PendingWrite | null;
  /** Outcome `escalated` (version 1: `conversation.escalated`). */
  escalation: Escalation | null;
}

/** The agent a turn was routed to (version 1: `agent.routed`). */
export interface Routing {
  agent: string;
  reason: string | null;
}

/** A tool call's arguments and permission (absent for a refused call), on its result. */
export interface ResultCall {
  params: unknown;
  permission: string | null;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function text(fields: Record<string, unknown>, name: string): string | null {
  const value = fields[name];
  return typeof value === 'string' ? value : null;
}

/** Written by version 1 (an event that does not say is read as the newest version). */
export function isVersion1(event: Fields): boolean {
  return typeof event.schema_version === 'number' && event.schema_version < 2;
}

/** The routing a version 2 `turn.started` carries; else null. */
export function startedRouting(event: Fields): Routing | null {
  if (event.kind !== 'turn.started' || isVersion1(event)) return null;
  const agent = text(event, 'agent');
  return agent === null ? null : { agent, reason: text(event, 'reason') };
}

/** The call a version 2 `tool.succeeded` / `tool.failed` carries (a `read` call has no `tool.called`); else null. */
export function resultCall(event: Fields): ResultCall | null {
  if ((event.kind !== 'tool.succeeded' && event.kind !== 'tool.failed') || isVersion1(event)) return null;
  if (event.params === undefined || event.params === null) return null;
  return { params: event.params, permission: text(event, 'permission') };
}

/**
 * A version 2 tool result that stands for its call too: it carries the call's permission, as a
 * `tool.called` does (a refused call has none, in either version).
 */
export function carriesCall(event: Fields): boolean {
  return resultCall(event)?.permission != null;
}

/** How a version 2 `agent.replied` ended its turn (no `turn.completed` follows it); else null. */
export function replyEnd(event: Fields): ReplyEnd | null {
  if (event.kind !== 'agent.replied' || isVersion1(event)) return null;
  const outcome = text(event, 'outcome');
  if (outcome === null) return null;
  const latency = event.latency_ms;
  const pending = record(event.pending);
  const escalation = record(event.escalation);
  return {
    outcome,
    latencyMs: typeof latency === 'number' && Number.isFinite(latency) ? latency : null,
    pending: pending ? { agent: text(pending, 'agent'), tool: text(pending, 'tool'), params: pending.params ?? {} } : null,
    escalation: escalation
      ? { reason: text(escalation, 'reason'), detail: text(escalation, 'detail') }
      : outcome === 'escalated'
        ? { reason: null, detail: null }
        : null,
  };
}
