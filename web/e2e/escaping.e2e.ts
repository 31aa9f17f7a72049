import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { expect, test } from 'vitest';
import {
  chatThreadId,
  conversation,
  expectNoBrowserErrors,
  openTab,
  reloadUntilVisible,
  sendChatMessage,
  useChromium,
  useNats,
  type Tab,
} from './support';

const browser = useChromium();
const store = useNats();

// Markup in everything a user, a tool or an API author controls. Were any of it parsed as HTML, the
// image's onerror or the script would set window.__xss, and the elements would be in the page.
const MARK = `xss-${randomUUID().slice(0, 8)}`;
const IMG = `<img src=x onerror="window.__xss='${MARK}'">`;
const SCRIPT = `<script>window.__xss='${MARK}'</script>`;
const HOSTILE = `${IMG}${SCRIPT}<b id="${MARK}">bold</b>`;

/** Fails unless `text` shows as text on the page and none of the markup became elements. */
async function expectShownAsText(tab: Tab, text: string) {
  const { page } = tab;
  await page.getByText(text).first().waitFor();
  await expectNoInjectedElements(page);
}

async function expectNoInjectedElements(page: Page) {
  const found = await page.evaluate((mark) => {
    const scripts = [...document.querySelectorAll('script')].filter((s) => s.textContent?.includes(mark));
    return {
      ran: (window as unknown as { __xss?: string }).__xss ?? null,
      images: document.querySelectorAll('img[src="x"]').length,
      scripts: scripts.length,
      bold: document.getElementById(mark) !== null,
    };
  }, MARK);
  expect(found, page.url()).toEqual({ ran: null, images: 0, scripts: 0, bold: false });
}

/** A turn event the way a worker stores it on `chat.<thread>.turn`. */
function turnEvent(threadId: string, turnId: string, kind: string, fields: Record<string, unknown>): string {
  return JSON.stringify({
    event_id: randomUUID(),
    schema_version: 1,
    thread_id: threadId,
    turn_id: turnId,
    occurred_at: new Date().toISOString(),
    kind,
    ...fields,
  });
}

test('markup in messages, replies, tool calls, dead letters and imported documents shows as text on every page', async () => {
  // Chat: the customer's message, and the reply that quotes it.
  const customer = await openTab(browser());
  await customer.page.goto('/');
  await sendChatMessage(customer.page, HOSTILE);
  const transcript = conversation(customer.page);
  await transcript.getByText(HOSTILE, { exact: true }).waitFor();
  await transcript.getByRole('listitem').filter({ hasText: /Thanks for your message/ }).waitFor();
  const threadId = await chatThreadId(customer.page);

  // A tool whose name, arguments, result and error carry markup (as an API could answer), stored the
  // way a worker stores a turn's tool calls: the open chat shows them live.
  const tool = `getOrder${IMG}`;
  const turnId = randomUUID();
  const subject = `chat.${threadId}.turn`;
  await store(subject, turnEvent(threadId, turnId, 'tool.called', { call_id: 'tool-1', tool, params: { order_id: HOSTILE }, permission: 'read' }));
  await store(subject, turnEvent(threadId, turnId, 'tool.succeeded', { call_id: 'tool-1', tool, status: 200, result: { note: HOSTILE }, latency_ms: 3, attempts: 1 }));
  await store(subject, turnEvent(threadId, turnId, 'tool.called', { call_id: 'tool-2', tool, params: {}, permission: 'read' }));
  await store(subject, turnEvent(threadId, turnId, 'tool.failed', { call_id: 'tool-2', tool, category: 'not_retryable', error: `HTTP 400: ${HOSTILE}`, status: 400, latency_ms: 3, attempts: 1 }));
  await transcript.getByText(tool).first().waitFor();
  await expectShownAsText(customer, HOSTILE);

  // A dead letter of a question with markup, and an error with markup.
  const deadLetter = await store(
    `dead.${threadId}`,
    JSON.stringify({
      event_id: randomUUID(),
      schema_version: 1,
      thread_id: threadId,
      turn_id: randomUUID(),
      occurred_at: new Date().toISOString(),
      kind: 'message.received',
      content: `Dead: ${HOSTILE}`,
    }),
    {
      'Smart-Support-Source-Subject': `chat.${threadId}.user`,
      'Smart-Support-Error-Category': 'retryable',
      'Smart-Support-Error': `gave up: ${HOSTILE}`,
      'Smart-Support-Attempts': '5',
      'Smart-Support-Failed-At': new Date().toISOString(),
    },
  );

  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;

  // Conversations: the preview (the message, or the reply that quotes it).
  await page.goto('/conversations');
  const preview = page.getByRole('link').and(page.getByTitle(threadId));
  await reloadUntilVisible(page, preview);
  expect(await preview.innerText()).toContain(IMG);
  await expectShownAsText(operator, IMG);

  // Replay: the message, the reply, the tool's name, its arguments, result and error.
  await page.goto(`/conversations/${threadId}`);
  const steps = page.getByRole('list', { name: 'Conversation steps' });
  await reloadUntilVisible(page, steps.getByRole('listitem').filter({ hasText: 'tool.failed' }));
  await steps.getByText(HOSTILE, { exact: true }).waitFor();
  await steps.getByText(`HTTP 400: ${HOSTILE}`).first().waitFor();
  const called = steps.getByRole('listitem').filter({ hasText: 'tool.called' }).first();
  await called.getByRole('button', { name: /^Parameters of / }).click();
  expect(JSON.parse(await called.locator('pre').innerText())).toEqual({ order_id: HOSTILE });
  const succeeded = steps.getByRole('listitem').filter({ hasText: 'tool.succeeded' });
  await succeeded.getByRole('button', { name: /^Result of / }).click();
  expect(JSON.parse(await succeeded.locator('pre').innerText())).toEqual({ note: HOSTILE });
  await expectShownAsText(operator, tool);

  // Dead letters: the list and the dead letter itself.
  await page.goto('/dead-letters');
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: `Dead letter ${deadLetter}`, exact: true }) });
  await reloadUntilVisible(page, row);
  await expectShownAsText(operator, `gave up: ${HOSTILE}`);
  await row.getByRole('link', { name: `Dead letter ${deadLetter}`, exact: true }).click();
  await page.getByRole('heading', { name: `Dead letter ${deadLetter}` }).waitFor();
  await expectShownAsText(operator, `Dead: ${HOSTILE}`);
  await expectShownAsText(operator, `gave up: ${HOSTILE}`);

  // Dashboard: it shows counts and agents only; nothing of the above may turn into elements there.
  await page.goto('/dashboard');
  await page.getByRole('heading', { name: 'Dashboard', exact: true }).waitFor();
  await page.getByText('Conversations').first().waitFor();
  await expectNoInjectedElements(page);

  // Imports: an operation whose summary and description carry markup, then a document whose error
  // message quotes its markup.
  const document = {
    openapi: '3.0.3',
    info: { title: HOSTILE, version: '1' },
    servers: [{ url: 'https://api.example' }],
    paths: {
      '/things': {
        get: { operationId: 'listThings', summary: `Things ${HOSTILE}`, description: HOSTILE, responses: { '200': { description: HOSTILE } } },
      },
    },
  };
  await page.goto('/imports');
  await page.getByLabel('OpenAPI document (JSON or YAML)').fill(JSON.stringify(document));
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await page.getByRole('region', { name: 'Operations' }).waitFor();
  await expectShownAsText(operator, `Things ${HOSTILE}`);

  await page.goto('/imports');
  await page.getByLabel('OpenAPI document (JSON or YAML)').fill(JSON.stringify({ ...document, openapi: HOSTILE }));
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  const failed = page.getByRole('alert').filter({ hasText: 'The import failed.' });
  await failed.waitFor();
  expect(await failed.innerText()).toContain(IMG);
  await expectNoInjectedElements(page);

  // Nothing ran in the customer's tab meanwhile either.
  await expectNoInjectedElements(customer.page);
  // The image would have been a failed load (src=x): had it been created, the browser logs that.
  expectNoBrowserErrors(customer);
  expectNoBrowserErrors(operator);
  await operator.close();
  await customer.close();
});
