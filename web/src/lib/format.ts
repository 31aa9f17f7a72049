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
