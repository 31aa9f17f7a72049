import { fireEvent, screen } from '@testing-library/react';

/** Answers the sign-in an operator page shows after a 401 the API-token way: opens it, types, Continue. */
export async function enterApiToken(token: string): Promise<void> {
  const toggle = await screen.findByRole('button', { name: 'Use an API token instead' });
  if (toggle.getAttribute('aria-expanded') !== 'true') fireEvent.click(toggle);
  fireEvent.change(await screen.findByLabelText('Operator token'), { target: { value: token } });
  fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
}
