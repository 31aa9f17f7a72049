/**
 * The whole handoff, a customer and an operator in two browsers: the customer asks for a person
 * and the agents step aside; the demo agent signs in, sees the conversation arrive in the Inbox
 * live, takes it over and answers; the customer reads the reply under the operator's name; an
 * internal note never reaches the customer; after Hand back the agents answer again.
 */
import { randomUUID } from 'node:crypto';
import { expect, test } from 'vitest';
import {
  UNAUTHORIZED_LOAD,
  conversation,
  demoAgent,
  demoAgentPassword,
  expectNoBrowserErrors,
  openTab,
  screenshot,
  sendChatMessage,
  signInWithPassword,
  transcript,
  waitForReply,
  useChromium,
} from './support';

const browser = useChromium();

const ESCALATION_REPLY = "I've asked a member of our support team to take over; they will answer here shortly.";
const HELD = 'A member of our support team will answer you here.';

test('a customer asks for a person, the agent takes over, answers, notes, hands back, and the bot answers again', async () => {
  // Unique words in the first message: it is the conversation's title in the Inbox, where the
  // demo data has conversations that asked for a person too.
  const marker = randomUUID().slice(0, 8);
  const ask = `I want to talk to a human (${marker})`;
  const replyText = `Hello, Alex here. I have looked at your account (${marker}).`;
  const noteText = `Internal: customer called twice about this (${marker}).`;

  // The operator signs in first and keeps the Inbox open: the conversation must arrive there live.
  const desk = await openTab(browser());
  const operator = desk.page;
  await signInWithPassword(operator, demoAgent.email, demoAgentPassword());
  await operator.getByRole('heading', { name: 'Inbox' }).waitFor();
  // The header names who is signed in, beside Sign out.
  const account = operator.getByRole('button', { name: 'Sign out' }).locator('xpath=..');
  await account.getByText(demoAgent.name, { exact: true }).waitFor();
  // A reload or a navigation would lose this mark.
  await operator.evaluate(() => Object.assign(window, { __inboxOpened: true }));

  const chat = await openTab(browser());
  const customer = chat.page;
  await customer.goto('/');
  await customer.getByText('Connected', { exact: true }).waitFor();
  await sendChatMessage(customer, ask);
  await waitForReply(customer, /I've asked a member of our support team to take over/);

  // Escalated: the next message is stored and held for a person, with no reply from the bot.
  await sendChatMessage(customer, 'Are you still there?');
  await conversation(customer).getByRole('listitem').filter({ hasText: HELD }).waitFor();
  expect(await transcript(customer)).toEqual([
    { who: 'user', text: ask },
    { who: 'agent', text: ESCALATION_REPLY },
    { who: 'user', text: 'Are you still there?' },
  ]);

  // The Inbox (Unassigned, the default view) shows it without a reload.
  const waiting = operator.getByRole('region', { name: 'Conversations needing a person' }).getByRole('link', { name: ask });
  await waiting.waitFor();
  expect(await operator.evaluate(() => (window as { __inboxOpened?: boolean }).__inboxOpened)).toBe(true);
  await expect(operator.getByRole('button', { name: /^Unassigned \d+$/ }).getAttribute('aria-pressed')).resolves.toBe('true');
  await expect(
    operator.getByRole('row').filter({ hasText: ask }).getByText('Waiting for a person').count(),
  ).resolves.toBe(1);
  await screenshot(operator, 'desk-inbox');

  // Take over and answer.
  await waiting.click();
  await operator.getByRole('heading', { name: 'Conversation' }).waitFor();
  await operator.getByText('Escalated: waiting for a person').waitFor();
  const actions = operator.getByRole('group', { name: 'Conversation actions' });
  await actions.getByRole('button', { name: 'Take over' }).click();
  await operator.getByText('You hold this conversation').waitFor();
  await operator.getByLabel('Reply to the customer').fill(replyText);
  await operator.getByRole('button', { name: 'Send reply' }).click();
  const steps = operator.getByRole('list', { name: 'Conversation steps' });
  await steps.getByRole('listitem').filter({ hasText: replyText }).waitFor();

  // The customer reads it live, under the operator's display name and never their email.
  const reply = conversation(customer).getByRole('listitem').filter({ hasText: replyText });
  await reply.waitFor();
  const replyRow = await reply.innerText();
  expect(replyRow).toContain(demoAgent.name);
  expect(replyRow).not.toContain('@');
  await expect(
    reply.evaluate((item) => item.querySelector('.visually-hidden')?.textContent),
  ).resolves.toBe(' of the support team said:');

  // An internal note: on the desk's timeline, never in the customer's chat.
  await operator.getByLabel('Internal note (only operators see it)').fill(noteText);
  await operator.getByRole('button', { name: 'Add note' }).click();
  await steps.getByRole('listitem').filter({ hasText: noteText }).waitFor();
  await expect(steps.getByText(`Internal note by ${demoAgent.name}`).count()).resolves.toBeGreaterThan(0);
  // The viewport, scrolled to the newest steps (a whole-page picture would cut through the fixed nav).
  await steps.getByRole('listitem').filter({ hasText: noteText }).scrollIntoViewIfNeeded();
  await screenshot(operator, 'desk-conversation');

  // Hand back: the customer's chat says the assistant answers again (stored after the note, so
  // a leaked note would be on the page by now).
  await actions.getByRole('button', { name: 'Hand back' }).click();
  await operator.getByText('Handed back: the agents answer it').waitFor();
  await conversation(customer).getByText('Our assistant is answering again.').waitFor();

  await sendChatMessage(customer, 'Where is my order ORD-1001?');
  await waitForReply(customer, /Order ORD-1001 is processing \(total .+\)\./);
  expect(await transcript(customer)).toEqual([
    { who: 'user', text: ask },
    { who: 'agent', text: ESCALATION_REPLY },
    { who: 'user', text: 'Are you still there?' },
    { who: 'user', text: 'Where is my order ORD-1001?' },
    { who: 'agent', text: expect.stringMatching(/^Order ORD-1001 is processing \(total .+\)\.$/) },
  ]);
  const customerText = await customer.locator('body').innerText();
  expect(customerText).not.toContain(noteText);
  expect(customerText).not.toContain(demoAgent.email);
  await screenshot(customer, 'desk-chat');

  expectNoBrowserErrors(chat);
  // The sign-in page asks who is signed in first: a 401 before the password is sent.
  expectNoBrowserErrors(desk, [UNAUTHORIZED_LOAD]);
  await chat.close();
  await desk.close();
});
