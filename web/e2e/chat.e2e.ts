import { expect, test } from 'vitest';
import {
  PHONE,
  conversation,
  expectNoBrowserErrors,
  openTab,
  screenshot,
  sendChatMessage,
  transcript,
  waitForReply,
  useChromium,
} from './support';

const browser = useChromium();

test('a customer asks about an order and the agent answers from the shop API', async () => {
  const tab = await openTab(browser());
  const { page } = tab;
  await page.goto('/');
  await page.getByRole('heading', { name: 'Chat with support' }).waitFor();
  await page.getByText('Connected', { exact: true }).waitFor();

  await sendChatMessage(page, 'Hello, where is my order ORD-1001?');
  // The orders agent's getOrder call to the demo shop says ORD-1001 is processing.
  await waitForReply(page, /Order ORD-1001 is processing \(total .+\)\./);
  // The chat shows that the agent looked it up with the shop's getOrder operation.
  await conversation(page).getByText(/getOrder/).waitFor();

  expect(await transcript(page)).toEqual([
    { who: 'user', text: 'Hello, where is my order ORD-1001?' },
    { who: 'agent', text: expect.stringMatching(/^Order ORD-1001 is processing \(total .+\)\.$/) },
  ]);
  await screenshot(page, 'chat');
  await page.setViewportSize(PHONE);
  await screenshot(page, 'chat-phone');

  expectNoBrowserErrors(tab);
  await tab.close();
});
