/** What a person should read for an event kind, and how it is drawn. */
export type KindTone = 'user' | 'agent' | 'operator' | 'note' | 'tool' | 'escalation' | 'failure' | 'system';

export function kindTone(kind: string): KindTone {
  if (kind === 'message.received' || kind.startsWith('message.')) return 'user';
  if (kind === 'agent.replied') return 'agent';
  // A person answering, and what operators write for each other (never shown to the customer).
  if (kind === 'operator.replied') return 'operator';
  if (kind === 'note.added') return 'note';
  if (kind.startsWith('tool.')) return 'tool';
  if (kind.includes('escalat')) return 'escalation';
  if (kind.includes('fail') || kind.includes('dead_letter') || kind.includes('error')) return 'failure';
  return 'system';
}

const LABELS: Record<string, string> = {
  'message.received': 'Customer message',
  'agent.replied': 'Agent reply',
  'turn.started': 'Turn started',
  'turn.completed': 'Turn completed',
  'turn.failed': 'Turn failed',
  'agent.routed': 'Routed to an agent',
  'tool.called': 'Tool called',
  'tool.succeeded': 'Tool succeeded',
  'tool.failed': 'Tool failed',
  'confirmation.requested': 'Confirmation requested',
  'conversation.escalated': 'Escalated to a person',
  'message.redriven': 'Message redriven',
  'conversation.assigned': 'Taken over by an operator',
  'conversation.released': 'Handed back to the agents',
  'operator.replied': 'Operator reply',
  'note.added': 'Internal note',
  'turn.held': 'Not answered by the agents: a person has the conversation',
  'conversation.erased': 'Conversation erased',
};

/** "tool.call_started" → "Tool call started" when no better label is known. */
export function kindLabel(kind: string): string {
  const known = LABELS[kind];
  if (known !== undefined) return known;
  const words = kind.replace(/[._]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Kinds the chat never draws as a line (they only drive the typing indicator). */
export function isQuietInChat(kind: string): boolean {
  return kind === 'turn.started' || kind === 'turn.completed' || kind === 'agent.routed';
}

/**
 * A tool step in the end-user chat: what the agent is doing, with the tool's name so the customer
 * (and support) can see which system was asked.
 */
export function chatToolText(kind: string, tool: string | null, permission: string | null): string {
  const name = tool ? ` (${tool})` : '';
  switch (kind) {
    case 'tool.called':
      return permission === 'write' ? `Making that change${name}…` : `Looking that up${name}…`;
    case 'tool.succeeded':
      return permission === 'write' ? `Change made${name}` : `Looked that up${name}`;
    case 'tool.failed':
      return `That did not work${name}`;
    default:
      return `Working on it${name}…`;
  }
}

/** Short status line for the end-user chat, e.g. for confirmations, escalation, failures. */
export function chatStatusText(kind: string): string {
  if (kind === 'confirmation.requested') return 'The agent needs your confirmation before going ahead.';
  if (kind === 'turn.held') return 'A member of our support team will answer you here.';
  if (kind === 'conversation.assigned') return 'A member of our support team has joined the conversation.';
  if (kind === 'conversation.released') return 'Our assistant is answering again.';
  if (kind === 'conversation.resolved') return 'This conversation was marked as resolved.';
  switch (kindTone(kind)) {
    case 'tool':
      return chatToolText(kind, null, null);
    case 'escalation':
      return 'Your conversation has been passed to a member of our support team.';
    case 'failure':
      return 'Sorry, something went wrong while answering. Please try again.';
    default:
      return kindLabel(kind);
  }
}
