/**
 * What the browser tests share: the stack that scripts/e2e.sh started (the `E2E_*` variables),
 * headless Debian Chromium driven by playwright-core, a tab that records every console error and
 * page error, and the steps several tests take (chat, operator sign-in, screenshots).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, onTestFailed } from 'vitest';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with scripts/e2e.sh, which starts the stack`);
  return value;
}

/** The stack under test: pages, `/ws` and `/api` on one origin. */
export const baseUrl = env('E2E_BASE_URL');
/** The operator token of `/api` (demo.sh's `API_TOKEN`). */
export const apiToken = env('E2E_API_TOKEN');

export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Debian's Chromium; never a browser downloaded by the test tool. */
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Chromium for the calling test file: started before its tests, closed after them. */
export function useChromium(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error('Chromium did not start (see the beforeAll error)');
    return browser;
  };
}

function launchChromium(): Promise<Browser> {
  // playwright-core adds --headless and a fresh --user-data-dir of its own. Without the
  // background-networking flags Chromium keeps calling Google's hosts, which this network refuses.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface Tab {
  page: Page;
  /** Every console error and uncaught page error so far. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A new browser context (its own storage, so its own conversation) with one page.
 * `operator`: the operator token is in storage already, as after a sign-in.
 */
export async function openTab(browser: Browser, options: { operator?: boolean } = {}): Promise<Tab> {
  // Reduced motion: the charts draw at once (no animation caught half-way in a screenshot).
  const context = await browser.newContext({ baseURL: baseUrl, viewport: LAPTOP, reducedMotion: 'reduce' });
  if (options.operator) {
    await context.addInitScript((token) => localStorage.setItem('smart-support.operator-token', token), apiToken);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  onTestFailed(async ({ task }) => {
    // What the page showed when the test failed: web/test-results/<test>.png and its text.
    if (page.isClosed()) return;
    const file = path.join(failureDir, `${task.name.replace(/[^\w]+/g, '-').slice(0, 80)}.png`);
    mkdirSync(failureDir, { recursive: true });
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    const text = await page.locator('body').innerText().catch(() => '(page text unavailable)');
    console.error(`failed at ${page.url()} (screenshot ${file}); the page said:\n${text}\nbrowser errors: ${errors.join('\n')}`);
  });
  return { page, errors, close: () => context.close() };
}

/** Fails on any console or page error other than the `expected` ones. */
export function expectNoBrowserErrors(tab: Tab, expected: RegExp[] = []): void {
  expect(tab.errors.filter((error) => !expected.some((pattern) => pattern.test(error)))).toEqual([]);
}

/** The browser's own line for the 401 that makes an operator page ask for the token. */
export const UNAUTHORIZED_LOAD = /Failed to load resource: the server responded with a status of 401/;

// web/test-results/screenshots/ (ignored by git) unless E2E_SCREENSHOTS names another folder: a plain
// `make test` leaves the work tree as it was; `E2E_SCREENSHOTS=$PWD/docs/screenshots` refreshes the docs'.
const screenshotDir =
  process.env.E2E_SCREENSHOTS ?? fileURLToPath(new URL('../test-results/screenshots/', import.meta.url));

const failureDir = fileURLToPath(new URL('../test-results/', import.meta.url));

/** Saves <screenshot folder>/<name>.png (the viewport, or the whole page when `fullPage`). */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  // No blinking caret, no half-finished transition in the pictures.
  await page.screenshot({
    path: path.join(screenshotDir, `${name}.png`),
    fullPage: options.fullPage ?? false,
    animations: 'disabled',
    caret: 'hide',
  });
}

// ---- The stack's NATS ----

/** Stores `payload` on `subject` (with `headers`) and returns its stream sequence (from the PubAck). */
export type Store = (subject: string, payload: string, headers?: Record<string, string>) => Promise<number>;

/**
 * The stack's own nats-server, which scripts/e2e.sh names in E2E_NATS_URL (as the admin user,
 * E2E_NATS_USER and E2E_NATS_PASSWORD), for the calling test
 * file: connected before its tests, closed after them. Tests put messages on it the way a faulty
 * producer, a worker, or a worker giving up would.
 */
export function useNats(): Store {
  let nats: NatsConnection | undefined;
  beforeAll(async () => {
    nats = await connect({
      servers: env('E2E_NATS_URL'),
      user: env('E2E_NATS_USER'),
      pass: env('E2E_NATS_PASSWORD'),
    });
  });
  afterAll(async () => {
    await nats?.close();
  });
  return async (subject, payload, withHeaders) => {
    if (!nats) throw new Error('not connected to NATS (see the beforeAll error)');
    const h = headers();
    for (const [name, value] of Object.entries(withHeaders ?? {})) h.set(name, value);
    const reply = await nats.request(subject, payload, { headers: h, timeout: 5_000 });
    const ack = reply.json<{ seq?: number; error?: { description: string } }>();
    if (ack.error || ack.seq === undefined) throw new Error(`${subject} not stored: ${JSON.stringify(ack)}`);
    return ack.seq;
  };
}

// ---- Chat ----

export function conversation(page: Page): Locator {
  return page.getByRole('list', { name: 'Conversation' });
}

export async function sendChatMessage(page: Page, text: string): Promise<void> {
  await page.getByLabel('Your message').fill(text);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
}

/** Waits until the agent's reply matching `reply` is in the transcript. */
export async function waitForReply(page: Page, reply: RegExp): Promise<void> {
  await conversation(page).getByRole('listitem').filter({ hasText: reply }).last().waitFor();
}

export interface Line {
  who: 'user' | 'agent';
  text: string;
}

/** What the user and the agent said, in the order the page shows it (status lines left out). */
export async function transcript(page: Page): Promise<Line[]> {
  const rows = await conversation(page)
    .getByRole('listitem')
    .evaluateAll((items) =>
      items.map((item) => ({
        // MessageList marks each bubble for screen readers: "You said:" / "Support said:".
        speaker: item.querySelector('.visually-hidden')?.textContent ?? '',
        text: item.querySelector(':scope > div')?.textContent ?? '',
      })),
    );
  return rows.flatMap(({ speaker, text }): Line[] => {
    if (speaker.startsWith('You')) return [{ who: 'user', text }];
    if (speaker.startsWith('Support')) return [{ who: 'agent', text }];
    return [];
  });
}

/** The conversation this tab's chat is in (the thread id the page keeps in localStorage). */
export async function chatThreadId(page: Page): Promise<string> {
  const stored = await page.evaluate(() => localStorage.getItem('smart-support.chat'));
  const threadId = stored ? (JSON.parse(stored) as { threadId?: unknown }).threadId : undefined;
  if (typeof threadId !== 'string') throw new Error(`no conversation stored by the chat page: ${stored}`);
  return threadId;
}

// ---- Operator pages ----

/** Answers the sign-in an operator page shows the API-token way: "Use an API token instead", the token, Continue. */
export async function signIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Use an API token instead' }).click();
  await page.getByRole('heading', { name: 'Operator sign-in' }).waitFor();
  await page.getByLabel('Operator token').fill(apiToken);
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** The demo's agent, as scripts/demo.sh adds it (name and email) and e2e.sh passes its password. */
export const demoAgent = { email: 'agent@demo.example', name: 'Alex' };

/** The demo agent's password (demo.sh's `DEMO_AGENT_PASSWORD`, which scripts/e2e.sh passes on). */
export function demoAgentPassword(): string {
  return env('E2E_AGENT_PASSWORD');
}

/** Signs in on `/signin` with an email and a password; the page goes on to the Inbox. */
export async function signInWithPassword(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/signin');
  await page.getByRole('heading', { name: 'Sign in to the support desk' }).waitFor();
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * Reloads the page until `locator` shows: the read models follow the event stream a moment
 * behind what the chat already shows.
 */
export async function reloadUntilVisible(page: Page, locator: Locator, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await locator.first().waitFor({ timeout: 2_000 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await page.reload();
  }
}

/** `GET /api…` with the operator token, for checks a page does not show. */
export async function api<T>(pathAndQuery: string): Promise<T> {
  const response = await fetch(`${baseUrl}/api${pathAndQuery}`, {
    headers: { Authorization: `Bearer ${apiToken}`, Accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`GET /api${pathAndQuery}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
