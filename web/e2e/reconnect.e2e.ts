import type { WebSocketRoute } from 'playwright-core';
import { expect, test } from 'vitest';
import {
  api,
  chatThreadId,
  conversation,
  eventually,
  expectNoBrowserErrors,
  openTab,
  sendChatMessage,
  transcript,
  waitForReply,
  useChromium,
} from './support';

const browser = useChromium();

/**
 * The page's `/ws` goes through a proxy the test controls (playwright's routeWebSocket, in the page):
 * - `pass`: frames go both ways untouched;
 * - `cut`: the next message is forwarded to the server, but nothing comes back: once the server has
 *   acked it (so it is stored), both sides are closed. The page never hears the ack nor the reply;
 * - `down`: every new connection is closed at once, as if the server could not be reached.
 */
type Link = 'pass' | 'cut' | 'down';

test('after the connection drops the chat reconnects and resumes: every reply once, none missing', async () => {
  const tab = await openTab(browser());
  const { page } = tab;
  let link: Link = 'pass';
  let refused = 0;
  await page.routeWebSocket(/\/ws(\?|$)/, (ws: WebSocketRoute) => {
    if (link === 'down') {
      refused += 1;
      void ws.close({ code: 1001, reason: 'unreachable (test)' });
      return;
    }
    const server = ws.connectToServer();
    server.onMessage((frame) => {
      if (link === 'pass') {
        ws.send(frame);
        return;
      }
      if (link === 'cut' && typeof frame === 'string' && (JSON.parse(frame) as { type?: string }).type === 'ack') {
        link = 'down';
        void server.close();
        void ws.close({ code: 1001, reason: 'cut by the test' });
      }
    });
  });

  await page.goto('/');
  await page.getByText('Connected', { exact: true }).waitFor();
  await sendChatMessage(page, 'Where is ORD-1001?');
  await waitForReply(page, /Order ORD-1001 is processing/);

  // The message is stored while the page is cut off: neither its ack nor its reply reach the page.
  link = 'cut';
  await sendChatMessage(page, 'And ORD-1002?');
  const banner = page.getByRole('status').filter({ hasText: 'The connection was lost' });
  await banner.waitFor();
  await conversation(page).getByText('Sending…').waitFor();
  // The page tries again by itself (and is refused once) before the server is back.
  await eventually('a reconnect attempt while the server is unreachable', async () => (refused > 0 ? true : undefined));
  link = 'pass';

  // Back without a click: the session resumes after the last event seen, the unacknowledged
  // message is sent again with its client_msg_id, and the reply that was missed arrives.
  await page.getByText('Connected', { exact: true }).waitFor({ timeout: 30_000 });
  await waitForReply(page, /Order ORD-1002 is/);
  await banner.waitFor({ state: 'hidden' });

  await sendChatMessage(page, 'What about ORD-1003?');
  await waitForReply(page, /Order ORD-1003 is/);

  expect(await transcript(page)).toEqual([
    { who: 'user', text: 'Where is ORD-1001?' },
    { who: 'agent', text: expect.stringMatching(/^Order ORD-1001 is processing/) },
    { who: 'user', text: 'And ORD-1002?' },
    { who: 'agent', text: expect.stringMatching(/^Order ORD-1002 is/) },
    { who: 'user', text: 'What about ORD-1003?' },
    { who: 'agent', text: expect.stringMatching(/^Order ORD-1003 is/) },
  ]);
  await expect(conversation(page).getByText('Sending…').count()).resolves.toBe(0);

  // The resend stored nothing twice: the conversation's replay has each message and reply once.
  const threadId = await chatThreadId(page);
  const kinds = await eventually('three answered turns in the replay', async () => {
    const replay = await api<{ steps: { kind: string; outcome?: unknown }[] }>(`/conversations/${threadId}/replay`);
    // A turn ends with `turn.completed` (events version 1) or with an `agent.replied` that carries
    // the outcome (version 2).
    const ends = replay.steps.filter(
      (step) => step.kind === 'turn.completed' || (step.kind === 'agent.replied' && typeof step.outcome === 'string'),
    );
    return ends.length >= 3 ? replay.steps.map((step) => step.kind) : undefined;
  });
  expect(kinds.filter((kind) => kind === 'message.received')).toHaveLength(3);
  expect(kinds.filter((kind) => kind === 'agent.replied')).toHaveLength(3);

  expectNoBrowserErrors(tab);
  await tab.close();
});
