/// <reference types="node" />
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeClientFrame, parseServerFrame } from './frames';
import type { ClientFrame } from './types';

const ENVELOPE = {
  event_id: 'becdb997-1632-5503-bf13-cca0eb7c0136',
  kind: 'message.received',
  thread_id: 'c21e9387f0ea424980ca332adb30c5c5',
  turn_id: 'b554e123-7c04-50cb-99cd-7184216766bd',
  occurred_at: '2026-11-25T15:22:20.302311Z',
  content: 'Where is my order?',
};

/**
 * Every frame example of the document: the inline `{"type":…}` code spans and the lines of its
 * `json` blocks that are frames, with the placeholders filled in (`N` a sequence, `{…}` an
 * event, a trailing `,…` dropped; `"…"` is a string already).
 */
function examples(markdown: string): string[] {
  const inline = [...markdown.matchAll(/`(\{"type":[^`]*\})`/g)].map((match) => match[1] ?? '');
  const blocks = [...markdown.matchAll(/```json\n([\s\S]*?)```/g)].flatMap((match) =>
    (match[1] ?? '').split('\n').filter((line) => line.startsWith('{"type":')),
  );
  return [...inline, ...blocks].map((example) =>
    example
      .replace(/:N\b/g, ':1')
      .replace(/\{…\}/g, JSON.stringify(ENVELOPE))
      .replace(/,…\}/g, '}'),
  );
}

function isClientFrame(value: unknown): value is ClientFrame {
  if (typeof value !== 'object' || value === null) return false;
  const frame = value as Record<string, unknown>;
  if (frame.type === 'ping') return Object.keys(frame).length === 1;
  return (
    frame.type === 'message' &&
    typeof frame.content === 'string' &&
    (frame.client_msg_id === undefined || typeof frame.client_msg_id === 'string')
  );
}

// The protocol's own document: every frame it shows must be one this client reads (or writes).
// (`npm test` runs in web/.)
const websocketDoc = readFileSync(`${process.cwd()}/../docs/websocket.md`, 'utf8');

describe('the frames of docs/websocket.md', () => {
  const frames = examples(websocketDoc);

  it('are found, every kind of frame', () => {
    const types = new Set(frames.map((frame) => (JSON.parse(frame) as { type: string }).type));
    expect([...types].sort()).toEqual(['ack', 'delta', 'error', 'event', 'message', 'ping', 'pong', 'session']);
  });

  it.each(frames)('%s is a frame the client reads or writes', (frame) => {
    const value: unknown = JSON.parse(frame);
    if (isClientFrame(value)) {
      // What the client sends: the hand-written type, encoded back to the same object.
      expect(JSON.parse(encodeClientFrame(value))).toEqual(value);
      return;
    }
    const parsed = parseServerFrame(frame);
    expect(parsed, frame).not.toBeNull();
    // Every member of the example the types know keeps its value (additions such as
    // `retry_after_ms` may go; a missing `message` reads as empty).
    const example = value as Record<string, unknown>;
    for (const [name, member] of Object.entries(parsed ?? {})) {
      if (name in example) expect(member).toEqual(example[name]);
    }
  });
});
