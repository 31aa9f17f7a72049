import type { ConversationStatus, DeadLetterCategory } from '../api/types';

/** Conversation statuses (docs/rest.md) in words. */
export const CONVERSATION_STATUS_LABELS: Record<ConversationStatus, string> = {
  open: 'Open',
  waiting_confirmation: 'Waiting for confirmation',
  escalated: 'Escalated',
  assigned: 'With a person',
  resolved: 'Resolved',
  failed: 'Failed',
};

export const DEAD_LETTER_CATEGORY_LABELS: Record<DeadLetterCategory, string> = {
  retryable: 'Retryable (retries used up)',
  not_retryable: 'Not retryable',
  fatal: 'Fatal (did not parse)',
};

/** The label of a known value, or the value itself (a newer server may send one we do not know). */
export function labelOf(labels: Record<string, string>, value: string): string {
  return Object.hasOwn(labels, value) ? (labels[value] ?? value) : value;
}
