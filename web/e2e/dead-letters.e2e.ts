import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { expect, test } from 'vitest';
import {
  chatThreadId,
  conversation,
  expectNoBrowserErrors,
  openTab,
  reloadUntilVisible,
  screenshot,
  sendChatMessage,
  useChromium,
  useNats,
  waitForReply,
} from './support';

const browser = useChromium();

const store = useNats();

/** A customer's conversation in its own tab; the tab stays open to see what the customer is told. */
async function customerConversation(first: string, reply: RegExp) {
  const tab = await openTab(browser());
  await tab.page.goto('/');
  await sendChatMessage(tab.page, first);
  await waitForReply(tab.page, reply);
  return { tab, threadId: await chatThreadId(tab.page) };
}

function row(page: Page, id: number) {
  return page.getByRole('row').filter({ has: page.getByRole('link', { name: `Dead letter ${id}`, exact: true }) });
}

/** Waits until the list is in: its rows and "That is all of them.", or that there are none. */
async function listLoaded(page: Page) {
  await page.getByText(/^(That is all of them\.|No dead letters)/).first().waitFor();
  await page.getByRole('status').filter({ hasText: 'Loading…' }).waitFor({ state: 'hidden' });
}

/** Confirms the dialog an action opens ("Redrive dead letter 7?"), the way an operator does. */
async function confirm(page: Page, title: string, button: string) {
  const dialog = page.getByRole('dialog', { name: title });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: button, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
}

test('a message the workers cannot read is dead-lettered: the customer is told, the operator sees why, cannot redrive it, and discards it', async () => {
  const customer = await customerConversation('Hello!', /Hello! I am the support assistant/);
  // Not an event at all, on the subject the workers answer: they dead-letter it at once.
  const poison = `{not json ${randomUUID()}`;
  await store(`chat.${customer.threadId}.user`, poison);
  // The worker's turn.failed reaches the customer as an apology in the chat.
  await conversation(customer.tab.page).getByText(/^Sorry/).waitFor();

  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/dead-letters');
  const poisonRow = page.getByRole('row').filter({ hasText: poison });
  await reloadUntilVisible(page, poisonRow);
  await expect(poisonRow.innerText()).resolves.toContain('Fatal (did not parse)');
  const name = await poisonRow.getByRole('link', { name: /^Dead letter \d+$/ }).getAttribute('aria-label');
  const id = Number(name?.replace('Dead letter ', ''));

  await poisonRow.getByRole('link', { name: `Dead letter ${id}`, exact: true }).click();
  await page.getByRole('heading', { name: `Dead letter ${id}` }).waitFor();
  await page.getByText('Fatal (did not parse)').waitFor();
  await page.getByText(poison).first().waitFor();

  // A redrive needs a user message to send again; this one is refused, in words, and stays.
  await page.getByRole('button', { name: `Redrive dead letter ${id}` }).click();
  await confirm(page, `Redrive dead letter ${id}?`, 'Redrive');
  await page.getByRole('alert').filter({ hasText: `Dead letter ${id} cannot be redriven` }).waitFor();

  await page.getByRole('button', { name: `Discard dead letter ${id}` }).click();
  await confirm(page, `Discard dead letter ${id}?`, 'Discard');
  await page.getByText(`Dead letter ${id} was discarded.`).waitFor();
  await listLoaded(page);
  await expect(row(page, id).count()).resolves.toBe(0);

  // The refused redrive answered 409: the browser logs that failed request.
  expectNoBrowserErrors(operator, [/Failed to load resource: the server responded with a status of 409/]);
  expectNoBrowserErrors(customer.tab);
  await operator.close();
  await customer.tab.close();
});

test('an operator redrives a dead letter and the customer gets the answer', async () => {
  const customer = await customerConversation('Hi there', /Hello! I am the support assistant/);
  // With the demo's rule engine no message runs out of retries, so the dead letter is stored the
  // way a worker stores one after its last retry (docs/dead-letters.md): the customer's message
  // as the payload, why it failed in the Smart-Support-* headers. It never was in the chat stream.
  const question = 'Is ORD-1006 on its way?';
  const original = {
    event_id: randomUUID(),
    schema_version: 1,
    thread_id: customer.threadId,
    turn_id: randomUUID(),
    occurred_at: new Date().toISOString(),
    kind: 'message.received',
    content: question,
  };
  const id = await store(`dead.${customer.threadId}`, JSON.stringify(original), {
    'Smart-Support-Source-Subject': `chat.${customer.threadId}.user`,
    'Smart-Support-Error-Category': 'retryable',
    'Smart-Support-Error': 'gave up after 5 deliveries: engine unavailable: connection refused',
    'Smart-Support-Attempts': '5',
    'Smart-Support-Failed-At': new Date().toISOString(),
  });

  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/dead-letters');
  await reloadUntilVisible(page, row(page, id));
  await expect(row(page, id).innerText()).resolves.toMatch(/Retryable[\s\S]*engine unavailable[\s\S]*Is ORD-1006 on its way\?/);
  await screenshot(page, 'dead-letters');

  await row(page, id).getByRole('link', { name: `Dead letter ${id}`, exact: true }).click();
  await page.getByRole('heading', { name: `Dead letter ${id}` }).waitFor();
  await page.getByRole('blockquote').filter({ hasText: question }).waitFor();
  await page.getByRole('button', { name: `Redrive dead letter ${id}` }).click();
  await confirm(page, `Redrive dead letter ${id}?`, 'Redrive');

  // Back on the list, which says what happened, and the dead letter is gone from it.
  await page.getByText(`Dead letter ${id} was redriven`).waitFor();
  await listLoaded(page);
  await expect(row(page, id).count()).resolves.toBe(0);

  // The workers answered the redriven message, and the customer's open chat shows it.
  await waitForReply(customer.tab.page, /Order ORD-1006 is/);

  expectNoBrowserErrors(operator);
  expectNoBrowserErrors(customer.tab);
  await operator.close();
  await customer.tab.close();
});
