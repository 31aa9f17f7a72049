import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ImportJob, ImportOperation } from '../../api/types';
import { mockFetch, requestMethod, requestedUrl } from '../../test/mockFetch';
import { ImportsPage } from './ImportsPage';
import { enterApiToken } from '../../test/signIn';

const ID = '0b7e4f8e-2a55-4c1a-9d1e-5f0c6f2b9a11';

function operation(fields: Partial<ImportOperation> & Pick<ImportOperation, 'operation_id' | 'method' | 'path'>): ImportOperation {
  return {
    generated_id: false,
    summary: null,
    description: null,
    tags: [],
    parameters: [],
    request_body: null,
    servers: ['http://127.0.0.1:8090'],
    class: 'read',
    suggested_class: 'read',
    reasons: ['GET only reads'],
    agent: 'orders',
    suggested_agent: 'orders',
    agent_reason: null,
    enabled: true,
    usable: true,
    unusable_reason: null,
    ...fields,
  };
}

const OPERATIONS: ImportOperation[] = [
  operation({ operation_id: 'getOrder', method: 'get', path: '/orders/{order_id}', summary: 'Look up an order' }),
  operation({
    operation_id: 'cancelOrder',
    method: 'post',
    path: '/orders/{order_id}/cancel',
    summary: 'Cancel an order',
    class: 'write',
    suggested_class: 'write',
    reasons: [
      'path ends in /cancel (cancel): an action that changes state',
      'write: the agent asks the user to confirm before calling it',
    ],
  }),
  operation({
    operation_id: 'deleteOrder',
    method: 'delete',
    path: '/orders/{order_id}',
    class: 'destructive',
    suggested_class: 'destructive',
    reasons: ['DELETE removes data'],
    enabled: false,
  }),
  operation({ operation_id: 'refundOrder', method: 'post', path: '/orders/{order_id}/refund', class: 'write', suggested_class: 'write', agent: 'billing', suggested_agent: 'billing' }),
];

function job(fields: Partial<ImportJob> = {}): ImportJob {
  return {
    id: ID,
    status: 'ready',
    url: null,
    version: '3.0.3',
    title: 'Demo shop',
    notes: [],
    error: null,
    created_at: '2026-11-25T21:00:00Z',
    finished_at: '2026-11-25T21:00:01Z',
    operations: OPERATIONS,
    ...fields,
  };
}

const pending = { body: job({ status: 'pending', operations: [], title: null, version: null, finished_at: null }) };

function renderAt(path: string) {
  render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/imports" element={<ImportsPage />} />
        <Route path="/imports/:id" element={<ImportsPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

/** Lets the fetch mock's promises (and the state updates after them) settle. */
async function flush() {
  await act(async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  });
}

function bodyOf(fetchMock: ReturnType<typeof mockFetch>, call: number): unknown {
  const body = fetchMock.mock.calls[call]?.[1]?.body;
  return typeof body === 'string' ? JSON.parse(body) : body;
}

describe('OpenAPI imports page', () => {
  beforeEach(() => vi.useFakeTimers({ shouldAdvanceTime: true }));
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('imports a pasted document, polls while pending, then shows the operations', async () => {
    const document = 'openapi: 3.0.3\ninfo: {title: Demo shop, version: "1"}\npaths: {}\n';
    const fetchMock = mockFetch({ status: 202, body: { id: ID, status: 'pending' } }, pending, pending, { body: job() });
    renderAt('/imports');

    fireEvent.change(screen.getByLabelText('OpenAPI document (JSON or YAML)'), { target: { value: document } });
    fireEvent.click(screen.getByRole('button', { name: 'Import' }));
    await flush();

    expect(requestMethod(fetchMock, 0)).toBe('POST');
    expect(requestedUrl(fetchMock, 0).pathname).toBe('/api/openapi/imports');
    expect(fetchMock.mock.calls[0]?.[1]?.body).toBe(document.trim());

    // The first look: still pending, with a progress line.
    await flush();
    expect(requestedUrl(fetchMock, 1).pathname).toBe(`/api/openapi/imports/${ID}`);
    expect(screen.getByText(/Reading and classifying the document/)).toBeTruthy();
    expect(screen.queryByRole('region', { name: 'Operations' })).toBeNull();

    // Asked again a second later, still pending; then ready.
    await act(async () => vi.advanceTimersByTimeAsync(1000));
    await flush();
    expect(fetchMock).toHaveBeenCalledTimes(3);
    await act(async () => vi.advanceTimersByTimeAsync(1000));
    await flush();
    expect(fetchMock).toHaveBeenCalledTimes(4);

    const table = await screen.findByRole('region', { name: 'Operations' });
    const cancel = within(table).getByRole('rowheader', { name: 'cancelOrder' }).closest('tr') as HTMLElement;
    expect(within(cancel).getByText('/orders/{order_id}/cancel')).toBeTruthy();
    expect(within(cancel).getByText('Cancel an order')).toBeTruthy();
    expect((within(cancel).getByLabelText('Class of cancelOrder') as HTMLSelectElement).value).toBe('write');
    expect(within(cancel).getByText('path ends in /cancel (cancel): an action that changes state')).toBeTruthy();
    expect((within(cancel).getByLabelText('Agent of cancelOrder') as HTMLInputElement).value).toBe('orders');
    expect((screen.getByLabelText('Enable deleteOrder') as HTMLInputElement).checked).toBe(false);
    expect(screen.queryByText(/Reading and classifying/)).toBeNull();

    // No more polling once ready.
    await act(async () => vi.advanceTimersByTimeAsync(3000));
    expect(fetchMock).toHaveBeenCalledTimes(4);
  });

  it('filters the operations by text, class, agent and enabled', async () => {
    mockFetch({ body: job() });
    renderAt(`/imports/${ID}`);
    const table = await screen.findByRole('region', { name: 'Operations' });
    const ids = () => within(table).queryAllByRole('rowheader').map((cell) => cell.textContent);
    expect(ids()).toEqual(['getOrder', 'cancelOrder', 'deleteOrder', 'refundOrder']);

    fireEvent.change(screen.getByLabelText('Search path or operation id'), { target: { value: 'cancel' } });
    expect(ids()).toEqual(['cancelOrder']);
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    fireEvent.change(screen.getByLabelText('Class'), { target: { value: 'write' } });
    expect(ids()).toEqual(['cancelOrder', 'refundOrder']);
    fireEvent.change(screen.getByLabelText('Agent'), { target: { value: 'billing' } });
    expect(ids()).toEqual(['refundOrder']);
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    fireEvent.change(screen.getByLabelText('Enabled'), { target: { value: 'no' } });
    expect(ids()).toEqual(['deleteOrder']);
  });

  it('shows a failed import with its named error in plain words', async () => {
    mockFetch({
      body: job({
        status: 'failed',
        operations: [],
        error: { code: 'swagger_2_not_supported', message: 'Swagger 2.0 is not supported; convert the document to OpenAPI 3.0 or 3.1 first' },
      }),
    });
    renderAt(`/imports/${ID}`);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('The import failed.');
    expect(alert.textContent).toContain('Swagger 2.0 is not supported: convert the document');
    expect(alert.textContent).toContain('swagger_2_not_supported');
    expect(screen.queryByRole('region', { name: 'Operations' })).toBeNull();
  });

  it('shows the notes of an import', async () => {
    mockFetch({ body: job({ operations: [], notes: ['the document has 1 webhook and no paths: webhooks are not imported'] }) });
    renderAt(`/imports/${ID}`);
    expect(await screen.findByText('the document has 1 webhook and no paths: webhooks are not imported')).toBeTruthy();
    expect(screen.getByText('The document has no operations.')).toBeTruthy();
  });

  it('PATCHes a class change at once and keeps it', async () => {
    const changed = job({ operations: OPERATIONS.map((op) => (op.operation_id === 'getOrder' ? { ...op, class: 'write' as const } : op)) });
    const fetchMock = mockFetch({ body: job() }, { body: changed });
    renderAt(`/imports/${ID}`);
    const select = (await screen.findByLabelText('Class of getOrder')) as HTMLSelectElement;

    fireEvent.change(select, { target: { value: 'write' } });
    expect(select.value).toBe('write'); // at once, before the answer
    await flush();

    expect(requestMethod(fetchMock, 1)).toBe('PATCH');
    expect(requestedUrl(fetchMock, 1).pathname).toBe(`/api/openapi/imports/${ID}/operations/getOrder`);
    expect(bodyOf(fetchMock, 1)).toEqual({ class: 'write' });
    expect((screen.getByLabelText('Class of getOrder') as HTMLSelectElement).value).toBe('write');
    expect(screen.getByText('suggested: read')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('puts the class back and says why when the server refuses the change', async () => {
    mockFetch({ body: job() }, { status: 409, body: { error: { code: 'import_not_ready', message: 'the import is not ready' } } });
    renderAt(`/imports/${ID}`);
    const select = (await screen.findByLabelText('Class of getOrder')) as HTMLSelectElement;

    fireEvent.change(select, { target: { value: 'destructive' } });
    expect(select.value).toBe('destructive');
    await flush();

    expect((screen.getByLabelText('Class of getOrder') as HTMLSelectElement).value).toBe('read');
    expect((await screen.findByRole('alert')).textContent).toContain(
      'Could not change getOrder, it is back as it was: the import is not ready (import_not_ready).',
    );
  });

  it('never lets an older refused edit undo a newer one', async () => {
    const destructive = job({
      operations: OPERATIONS.map((op) => (op.operation_id === 'getOrder' ? { ...op, class: 'destructive' as const } : op)),
    });
    mockFetch(
      { body: job() },
      { status: 400, body: { error: { code: 'unknown_class', message: 'no' } } },
      { body: destructive },
    );
    renderAt(`/imports/${ID}`);
    const select = (await screen.findByLabelText('Class of getOrder')) as HTMLSelectElement;
    fireEvent.change(select, { target: { value: 'write' } });
    fireEvent.change(select, { target: { value: 'destructive' } });
    await flush();
    expect((screen.getByLabelText('Class of getOrder') as HTMLSelectElement).value).toBe('destructive');
    // The older edit's refusal is still said.
    expect((await screen.findByRole('alert')).textContent).toContain('Could not change getOrder');
  });

  it('disables an operation and sets its agent', async () => {
    const fetchMock = mockFetch({ body: job() }, { body: job() }, { body: job() });
    renderAt(`/imports/${ID}`);
    fireEvent.click(await screen.findByLabelText('Enable getOrder'));
    await flush();
    expect(bodyOf(fetchMock, 1)).toEqual({ enabled: false });

    const agent = screen.getByLabelText('Agent of cancelOrder');
    fireEvent.change(agent, { target: { value: '' } });
    fireEvent.keyDown(agent, { key: 'Enter' });
    await flush();
    expect(bodyOf(fetchMock, 2)).toEqual({ agent: null });
  });

  it('shows an operation that cannot be used with its reason, and does not let it be enabled', async () => {
    const reason =
      '`#/components/schemas/DoesNotExist` does not exist (at /paths/~1shipments/post/requestBody/content/application~1json/schema)';
    const broken = operation({
      operation_id: 'createShipment',
      method: 'post',
      path: '/shipments',
      class: 'write',
      suggested_class: 'write',
      enabled: false,
      usable: false,
      unusable_reason: reason,
    });
    const fetchMock = mockFetch({ body: job({ operations: [...OPERATIONS, broken] }) });
    renderAt(`/imports/${ID}`);

    const box = (await screen.findByLabelText('Enable createShipment')) as HTMLInputElement;
    expect(box.disabled).toBe(true);
    expect(box.checked).toBe(false);
    expect(box.getAttribute('aria-describedby')).toBe('unusable-createShipment');
    expect(document.getElementById('unusable-createShipment')?.textContent).toBe(
      `Cannot be used: ${reason}. It is not published.`,
    );
    expect(screen.getByText(/5 operations, 3 enabled, 1 cannot be used/)).toBeTruthy();
    fireEvent.click(box);
    await flush();
    // No PATCH: only the GET that loaded the import.
    expect(fetchMock.mock.calls.map((_, i) => requestMethod(fetchMock, i))).toEqual(['GET']);
    // The usable ones stay selectable.
    expect((screen.getByLabelText('Enable getOrder') as HTMLInputElement).disabled).toBe(false);
  });

  it('publishes after the confirmation and shows the result', async () => {
    const fetchMock = mockFetch({ body: job() }, { body: { version: 7, operations: 3 } });
    renderAt(`/imports/${ID}`);
    fireEvent.click(await screen.findByRole('button', { name: 'Publish' }));

    const dialog = screen.getByRole('dialog', { name: "Publish 3 enabled operations as the agents' tools?" });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Publish' }));
    await flush();

    expect(requestMethod(fetchMock, 1)).toBe('POST');
    expect(requestedUrl(fetchMock, 1).pathname).toBe(`/api/openapi/imports/${ID}/publish`);
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(await screen.findByText("Published 3 operations as the agents' tools (version 7).")).toBeTruthy();
  });

  it('says in plain words which operation kept the publish from happening', async () => {
    const message = 'operation cancelOrder is enabled for agent "shipping", which the agents config does not have';
    mockFetch({ body: job() }, { status: 400, body: { error: { code: 'unknown_agent', message } } });
    renderAt(`/imports/${ID}`);
    fireEvent.click(await screen.findByRole('button', { name: 'Publish' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Publish' }));
    await flush();
    const alert = (await screen.findByRole('alert')).textContent ?? '';
    expect(alert).toContain('Nothing was published; your review is kept.');
    expect(alert).toContain('has no agent, or one the agents config does not have');
    expect(alert).toContain(message);
    expect(alert).not.toContain('not available on this server');
  });

  it('does nothing when the publish is cancelled', async () => {
    const fetchMock = mockFetch({ body: job() });
    renderAt(`/imports/${ID}`);
    fireEvent.click(await screen.findByRole('button', { name: 'Publish' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));
    await flush();
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('asks for the operator token and then imports', async () => {
    const fetchMock = mockFetch(
      { status: 401, body: { error: { code: 'unauthorized', message: 'a valid bearer token is required' } } },
      { status: 202, body: { id: ID, status: 'pending' } },
      { body: job() },
    );
    renderAt('/imports');
    fireEvent.click(screen.getByLabelText('From a URL'));
    fireEvent.change(screen.getByLabelText('Document URL'), { target: { value: 'https://api.example/openapi.yaml' } });
    fireEvent.click(screen.getByRole('button', { name: 'Import' }));
    await flush();
    await enterApiToken('secret');
    await flush();
    expect(bodyOf(fetchMock, 1)).toEqual({ url: 'https://api.example/openapi.yaml' });
    expect(new Headers(fetchMock.mock.calls[1]?.[1]?.headers).get('Authorization')).toBe('Bearer secret');
    expect(await screen.findByRole('region', { name: 'Operations' })).toBeTruthy();
  });
});
