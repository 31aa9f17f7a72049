import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { expect, test } from 'vitest';
import { api, eventually, expectNoBrowserErrors, openTab, PHONE, screenshot, useChromium } from './support';

const browser = useChromium();

/** The demo shop's own OpenAPI document, as an operator would paste it. */
const SHOP_DOCUMENT = readFileSync(new URL('../../fixtures/shop-openapi.yaml', import.meta.url), 'utf8');

interface ImportJob {
  status: string;
  operations: Array<{ operation_id: string; class: string; enabled: boolean }>;
}

/** The row of one operation in the Operations table (its row header is the operation id). */
function row(page: Page, operationId: string) {
  return page
    .getByRole('region', { name: 'Operations' })
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: operationId, exact: true }) });
}

/** The import's id, from the page's address (/imports/<id>). */
function importId(page: Page): string {
  const id = new URL(page.url()).pathname.split('/').at(-1);
  if (!id) throw new Error(`no import id in ${page.url()}`);
  return id;
}

test('an operator imports the shop document, reviews it, and publishes it', async () => {
  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Imports' }).click();
  await page.getByRole('heading', { name: 'OpenAPI imports' }).waitFor();

  // Paste (the default source) and import; the page moves to /imports/<id> and polls until ready.
  await page.getByLabel('OpenAPI document (JSON or YAML)').fill(SHOP_DOCUMENT);
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await page.waitForURL(/\/imports\/[0-9a-f-]{36}$/);
  const operations = page.getByRole('region', { name: 'Operations' });
  await operations.waitFor();
  const id = importId(page);

  // cancelOrder is a write, and the page says why.
  const cancel = row(page, 'cancelOrder');
  expect(await cancel.getByRole('combobox', { name: 'Class of cancelOrder' }).inputValue()).toBe('write');
  await cancel.getByText('path ends in /cancel (cancel): an action that changes state').waitFor();
  // deleteOrder is destructive and starts disabled.
  expect(await row(page, 'deleteOrder').getByRole('checkbox', { name: 'Enable deleteOrder' }).isChecked()).toBe(false);

  // Raise listProducts to write; disable getProduct. Each is saved at once.
  await row(page, 'listProducts').getByRole('combobox', { name: 'Class of listProducts' }).selectOption('write');
  await row(page, 'getProduct').getByRole('checkbox', { name: 'Enable getProduct' }).uncheck();
  const saved = await eventually('the edits to be stored', async () => {
    const job = await api<ImportJob>(`/openapi/imports/${id}`);
    const byId = new Map(job.operations.map((op) => [op.operation_id, op]));
    return byId.get('listProducts')?.class === 'write' && byId.get('getProduct')?.enabled === false ? job : undefined;
  });
  const enabled = saved.operations.filter((op) => op.enabled).length;
  expect(await page.getByRole('alert').count()).toBe(0);

  // The checkbox just used scrolled the table box sideways if it had to: back to its start for the picture.
  await operations.evaluate((box) => box.scrollTo(0, 0));
  await screenshot(page, 'imports', { fullPage: true });

  // Publish asks first, with the number of enabled operations.
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: `Publish ${enabled} enabled operations as the agents' tools?` });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Publish', exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });

  // The published set answers with its version and size; the page says both.
  await page
    .getByRole('status')
    .filter({ hasText: /^Published \d+ operations? as the agents' tools \(version \d+\)\./ })
    .waitFor();

  // At phone width the table turns into cards: nothing wider than the screen.
  await page.setViewportSize(PHONE);
  await row(page, 'cancelOrder').getByRole('combobox', { name: 'Class of cancelOrder' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // The fifth nav link stays on the line of the others (the nav's height is fixed per width).
  const nav = page.getByRole('navigation', { name: 'Main' });
  const chatTop = (await nav.getByRole('link', { name: 'Chat', exact: true }).boundingBox())?.y;
  const importsTop = (await nav.getByRole('link', { name: 'Imports', exact: true }).boundingBox())?.y;
  expect(importsTop).toBe(chatTop);
  // The operations as cards, cancelOrder's at the top.
  await row(page, 'cancelOrder').evaluate((card) => card.scrollIntoView({ block: 'start' }));
  await page.evaluate(() => window.scrollBy(0, -100)); // below the sticky nav
  await screenshot(page, 'imports-phone');

  expectNoBrowserErrors(operator);
  await operator.close();
});

test('a Swagger 2.0 document fails with its named error in plain words', async () => {
  const operator = await openTab(browser(), { operator: true });
  const { page } = operator;
  await page.goto('/imports');
  await page.getByLabel('OpenAPI document (JSON or YAML)').fill('swagger: "2.0"\ninfo: {title: Old, version: "1"}\npaths: {}\n');
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  const alert = page.getByRole('alert').filter({ hasText: 'The import failed.' });
  await alert.waitFor();
  expect(await alert.innerText()).toContain('swagger_2_not_supported');
  expectNoBrowserErrors(operator);
  await operator.close();
});
