import type { RegressDecision, RegressToolCall } from '../../api/types';

/** The kinds of change, in the order the report lists them (docs/regress.md "What is compared"). */
export const CHANGE_KINDS = ['agent', 'tool_calls', 'confirmation', 'escalation', 'reply'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

const KIND_LABELS: Record<ChangeKind, string> = {
  agent: 'agent',
  tool_calls: 'tool calls',
  confirmation: 'confirmation',
  escalation: 'escalation',
  reply: 'reply',
};

/** A kind of change as people read it (`tool_calls` → "tool calls"); an unknown one as it is. */
export function kindLabel(kind: string): string {
  return Object.hasOwn(KIND_LABELS, kind) ? KIND_LABELS[kind as ChangeKind] : kind;
}

/** Why a run failed, in plain words; the server's message (e.g. `new.yaml:8: reason`) follows. */
const RUN_ERRORS: Record<string, string> = {
  invalid_config: 'The config does not load; nothing was replayed.',
  run_failed: 'The run could not read the recorded turns.',
  interrupted: 'The server running it stopped before it ended; start it again.',
};

export function runErrorText(code: string): string {
  return RUN_ERRORS[code] ?? 'The run failed.';
}

const NONE = '—';

function compact(params: unknown): string {
  return params === null || params === undefined ? '' : JSON.stringify(params);
}

function callText(call: RegressToolCall): string {
  let text = `${call.tool} ${compact(call.params)}`.trimEnd();
  if (call.refused) text += ' (refused)';
  if (call.new) text += ' (new: not called)';
  return text;
}

export interface ComparedField {
  field: ChangeKind;
  label: string;
  changed: boolean;
  recorded: string;
  replayed: string;
}

/** The five fields of two decisions as text, as the command's report shows them side by side. */
export function comparedFields(
  recorded: RegressDecision,
  replayed: RegressDecision,
  changes: readonly string[],
): ComparedField[] {
  const show: Record<ChangeKind, (d: RegressDecision) => string> = {
    agent: (d) => d.agent ?? NONE,
    tool_calls: (d) => (d.tool_calls.length ? d.tool_calls.map(callText).join('\n') : NONE),
    confirmation: (d) => (d.confirmation ? `${d.confirmation.tool} ${compact(d.confirmation.params)}`.trimEnd() : NONE),
    escalation: (d) => (d.escalation ? `${d.escalation.reason} (${d.escalation.detail})` : NONE),
    reply: (d) => d.reply ?? NONE,
  };
  return CHANGE_KINDS.map((field) => ({
    field,
    label: KIND_LABELS[field],
    changed: changes.includes(field),
    recorded: show[field](recorded),
    replayed: show[field](replayed),
  }));
}

/** A file's name as the API takes it (`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`): other characters become `_`. */
export function configName(fileName: string): string {
  const name = fileName.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]/, '_').slice(0, 64);
  return name === '' ? 'config.yaml' : name;
}

/** Thread ids typed one per line or separated by commas or spaces. */
export function threadIds(text: string): string[] {
  return text.split(/[\s,]+/).filter((id) => id !== '');
}
