import { expect, test } from 'vitest';
import {
  UNAUTHORIZED_LOAD,
  chatThreadId,
  expectNoBrowserErrors,
  openTab,
  reloadUntilVisible,
  screenshot,
  sendChatMessage,
  signIn,
  waitForReply,
  useChromium,
} from './support';

const browser = useChromium();

test('an operator finds the conversation, opens its replay and reads a tool call with its params and result', async () => {
  const tab = await openTab(browser());
  const { page } = tab;
  await page.goto('/');
  await sendChatMessage(page, 'Can you check ORD-1004 for me?');
  await waitForReply(page, /Order ORD-1004 is/);
  const threadId = await chatThreadId(page);

  // The operator pages ask for the token first (the 401 behind that is the one expected error).
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Conversations' }).click();
  await signIn(page);
  await page.getByRole('heading', { name: 'Conversations' }).waitFor();
  // Each row links to its conversation (the thread id is the link's title), named by the
  // customer's first message; the latest message or reply is below it.
  const link = page.getByRole('link', { name: 'Can you check ORD-1004 for me?' }).and(page.getByTitle(threadId));
  await reloadUntilVisible(page, link);
  const row = page.getByRole('row').filter({ has: link });
  await expect(row.getByRole('cell').allInnerTexts()).resolves.toEqual([
    expect.stringMatching(/^Can you check ORD-1004 for me\?\s*Order ORD-1004 is \w+ \(total .+\)\.$/),
    'Open', // status
    'orders', // the agent that answered
    expect.any(String), // started
    expect.any(String), // last activity
    '1', // messages
    '1', // turns
  ]);
  await screenshot(page, 'conversations');

  await link.click();
  await page.waitForURL(`**/conversations/${threadId}`);
  await page.getByRole('heading', { name: 'Replay' }).waitFor();
  const steps = page.getByRole('list', { name: 'Conversation steps' });
  await steps.getByText('Can you check ORD-1004 for me?').waitFor();
  await steps.getByText(/Order ORD-1004 is/).waitFor();

  // The tool call's parameters and its result are behind show/hide buttons named after the tool:
  // the parameters on its `tool.called` (events version 1) or, for a read call of version 2, on its
  // `tool.succeeded`; each button's panel follows it.
  const params = steps.getByRole('button', { name: 'Parameters of getOrder' });
  await params.click();
  const paramsPanel = params.locator('xpath=following-sibling::*[1]');
  expect(JSON.parse(await paramsPanel.locator('pre').innerText())).toEqual({ order_id: 'ORD-1004' });

  const succeeded = steps.getByRole('listitem').filter({ hasText: 'tool.succeeded' });
  const resultButton = succeeded.getByRole('button', { name: 'Result of getOrder' });
  await resultButton.click();
  const resultPanel = resultButton.locator('xpath=following-sibling::*[1]');
  const result = JSON.parse(await resultPanel.locator('pre').innerText()) as { order_id?: string; status?: string };
  expect(result.order_id).toBe('ORD-1004');
  // The status the agent's reply names is the one the shop API returned.
  expect(await steps.getByText(/Order ORD-1004 is/).innerText()).toContain(`is ${result.status} (total`);
  await screenshot(page, 'replay', { fullPage: true });

  expectNoBrowserErrors(tab, [UNAUTHORIZED_LOAD]);
  await tab.close();
});
