import type { ClientFrame, EventEnvelope, ServerFrame } from './types';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isEnvelope(value: unknown): value is EventEnvelope {
  return isRecord(value) && typeof value.kind === 'string' && typeof value.event_id === 'string';
}

/**
 * Turns the text of one WebSocket frame into a typed frame, or `null` when it is not one this
 * client understands (those are ignored rather than trusted).
 */
export function parseServerFrame(raw: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  switch (value.type) {
    case 'session':
      return typeof value.thread_id === 'string' && typeof value.token === 'string'
        ? { type: 'session', thread_id: value.thread_id, token: value.token }
        : null;
    case 'ack':
      return typeof value.client_msg_id === 'string' && isSeq(value.seq)
        ? { type: 'ack', client_msg_id: value.client_msg_id, seq: value.seq }
        : null;
    case 'event':
      return isSeq(value.seq) && isEnvelope(value.event)
        ? { type: 'event', seq: value.seq, event: value.event }
        : null;
    case 'error':
      return typeof value.code === 'string'
        ? {
            type: 'error',
            code: value.code,
            message: typeof value.message === 'string' ? value.message : '',
            ...(typeof value.client_msg_id === 'string' ? { client_msg_id: value.client_msg_id } : {}),
          }
        : null;
    case 'pong':
      return { type: 'pong' };
    case 'delta':
      return typeof value.turn_id === 'string' && typeof value.text === 'string'
        ? { type: 'delta', turn_id: value.turn_id, text: value.text }
        : null;
    default:
      return null;
  }
}

export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}
