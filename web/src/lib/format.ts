const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function parse(iso: string): Date | null {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "Nov 25, 2025, 2:52 PM" in the reader's locale; the raw text when it is not a date. */
export function formatDateTime(iso: string): string {
  const date = parse(iso);
  return date ? dateTime.format(date) : iso;
}

export function formatTime(iso: string): string {
  const date = parse(iso);
  return date ? timeOnly.format(date) : iso;
}

/** With seconds, for step-by-step timelines. */
export function formatDateTimeSeconds(iso: string): string {
  const date = parse(iso);
  return date ? dateTimeSeconds.format(date) : iso;
}

/** A `datetime-local` input's value (the reader's local time) as RFC 3339 UTC; '' stays ''. */
export function localInputToIso(value: string): string {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** RFC 3339 as a `datetime-local` input's value in the reader's local time; '' when not a date. */
export function isoToLocalInput(iso: string): string {
  const date = iso ? parse(iso) : null;
  if (!date) return '';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}`;
}
