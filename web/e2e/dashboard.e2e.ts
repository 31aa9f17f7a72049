import type { Page } from 'playwright-core';
import { expect, test } from 'vitest';
import {
  eventually,
  expectNoBrowserErrors,
  openTab,
  screenshot,
  sendChatMessage,
  useChromium,
  waitForReply,
} from './support';

const browser = useChromium();

/** The number on the dashboard's Conversations card (its `data-value`), once the page has one. */
async function conversationsCard(page: Page): Promise<number> {
  const value = page.getByRole('region', { name: 'Conversations', exact: true }).locator('[data-value]');
  await value.waitFor();
  return Number(await value.getAttribute('data-value'));
}

test('the dashboard counts a new conversation after a refresh', async () => {
  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/dashboard');
  await page.getByRole('heading', { name: 'Dashboard', exact: true }).waitFor();
  // The page refreshes itself every 10 s; off, so only the Refresh below changes the number.
  await page.getByRole('checkbox', { name: /Refresh every/ }).uncheck();
  const before = await conversationsCard(page);

  const customer = await openTab(browser());
  await customer.page.goto('/');
  await sendChatMessage(customer.page, 'Do you sell gift cards? Which products do you have?');
  await waitForReply(customer.page, /Here is what we sell/);

  // The analytics follow the event stream a moment behind the chat: refresh until the card moves.
  const after = await eventually('the Conversations card to change', async () => {
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Loading…' }).waitFor({ state: 'hidden' });
    const now = await conversationsCard(page);
    return now !== before ? now : undefined;
  });
  expect(after).toBe(before + 1);
  await screenshot(page, 'dashboard', { fullPage: true });

  expectNoBrowserErrors(operator);
  expectNoBrowserErrors(customer);
  await customer.close();
  await operator.close();
});
