import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { chatThreadId, expectNoBrowserErrors, openTab, screenshot, sendChatMessage, useChromium, waitForReply } from './support';

const browser = useChromium();

/** The demo's agents config with the order-status reply changed, as an admin would paste a draft. */
const CHANGED_CONFIG = readFileSync(new URL('../../fixtures/agents.yaml', import.meta.url), 'utf8').replace(
  'Order {result.order_id} is {result.status} (total {result.total_cents|money}).',
  'Your order {result.order_id} is {result.status}.',
);

test('an admin tries a changed config on a conversation and compares the changed turn', async () => {
  expect(CHANGED_CONFIG).toContain('Your order {result.order_id}');
  // A conversation whose reply the changed template writes.
  const customer = await openTab(browser());
  await customer.page.goto('/');
  await sendChatMessage(customer.page, 'Where is ORD-1003?');
  await waitForReply(customer.page, /Order ORD-1003 is/);
  const threadId = await chatThreadId(customer.page);
  await customer.close();

  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Regress' }).click();
  await page.getByRole('heading', { name: 'Regress', exact: true }).waitFor();

  await page.getByLabel('Paste the config').check();
  await page.getByLabel('Agents config (YAML)').fill(CHANGED_CONFIG);
  await page.getByLabel('Only these threads').fill(threadId);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/regress\/[0-9a-f-]{36}$/);

  // Done: one turn replayed and changed, its reply only.
  const summary = page.getByLabel('Summary');
  await summary.waitFor();
  await expect(summary.innerText()).resolves.toMatch(/Turns replayed\s+1\s+Unchanged\s+0\s+Changed\s+1/);
  const list = page.getByRole('region', { name: 'Changed turns' });
  await list.getByText('Where is ORD-1003?').waitFor();
  await list.getByRole('button', { name: /^Compare the turn at seq \d+$/ }).click();

  const compared = page.getByRole('region', { name: 'Recorded and replayed turn' });
  const reply = compared.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /^reply/ }) });
  await expect(reply.innerText()).resolves.toMatch(/\(changed\)[\s\S]*Order ORD-1003 is \w+ \(total .+\)\.[\s\S]*Your order ORD-1003 is \w+\./);
  const agent = compared.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /^agent/ }) });
  await expect(agent.innerText()).resolves.not.toContain('(changed)');
  expect(new URL(page.url()).searchParams.get('turn')).toMatch(/^[0-9a-f-]{36}$/);
  await screenshot(page, 'regress', { fullPage: true });
  expectNoBrowserErrors(operator);
  await operator.close();
});
