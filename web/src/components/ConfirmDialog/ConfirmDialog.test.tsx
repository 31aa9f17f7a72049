import { fireEvent, render, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { ConfirmDialog } from './ConfirmDialog';

function open(onConfirm = vi.fn(), onCancel = vi.fn()) {
  render(
    <>
      <button type="button">Outside</button>
      <ConfirmDialog title="Discard dead letter 7?" confirmLabel="Discard" danger onConfirm={onConfirm} onCancel={onCancel}>
        <p>This cannot be undone.</p>
      </ConfirmDialog>
    </>,
  );
  return { onConfirm, onCancel, dialog: screen.getByRole('dialog', { name: 'Discard dead letter 7?' }) };
}

describe('ConfirmDialog', () => {
  it('is a labelled, described modal with focus on Cancel', () => {
    const { dialog } = open();
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.getElementById(dialog.getAttribute('aria-describedby') ?? '')?.textContent).toBe(
      'This cannot be undone.',
    );
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
  });

  it('keeps Tab and Shift+Tab inside the dialog', () => {
    const { dialog } = open();
    const cancel = within(dialog).getByRole('button', { name: 'Cancel' });
    const discard = within(dialog).getByRole('button', { name: 'Discard' });

    discard.focus();
    fireEvent.keyDown(discard, { key: 'Tab' });
    expect(document.activeElement).toBe(cancel);
    fireEvent.keyDown(cancel, { key: 'Tab', shiftKey: true });
    expect(document.activeElement).toBe(discard);
  });

  it('confirms only with the confirm button; Escape and a click beside it cancel', () => {
    const { dialog, onConfirm, onCancel } = open();
    fireEvent.keyDown(dialog, { key: 'Escape' });
    fireEvent.mouseDown(dialog.parentElement!);
    fireEvent.mouseDown(dialog);
    expect(onCancel).toHaveBeenCalledTimes(2);
    expect(onConfirm).not.toHaveBeenCalled();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Discard' }));
    expect(onConfirm).toHaveBeenCalledTimes(1);
  });
});
