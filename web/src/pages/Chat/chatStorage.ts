/** The conversation this browser is in: kept so a reload or a new tab resumes it. */
export interface StoredChat {
  threadId: string;
  token: string;
  /** Last event `seq` seen. A fresh page load still replays from 0 (the transcript lives only in memory). */
  lastSeq: number;
}

const KEY = 'smart-support.chat';

export function loadStoredChat(): StoredChat | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const value: unknown = JSON.parse(raw);
    if (typeof value !== 'object' || value === null) return null;
    const { threadId, token, lastSeq } = value as Record<string, unknown>;
    if (typeof threadId !== 'string' || typeof token !== 'string') return null;
    return { threadId, token, lastSeq: typeof lastSeq === 'number' ? lastSeq : 0 };
  } catch {
    return null;
  }
}

export function saveStoredChat(chat: StoredChat | null): void {
  try {
    if (chat) localStorage.setItem(KEY, JSON.stringify(chat));
    else localStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the conversation just won't survive a reload.
  }
}

/** `ws(s)://host/ws`, with the resume parameters when there is a thread to resume. */
export function socketUrl(
  location: Pick<Location, 'protocol' | 'host'>,
  resume: { threadId: string; token: string; afterSeq: number } | null,
): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const base = `${scheme}://${location.host}/ws`;
  if (!resume) return base;
  const query = new URLSearchParams({
    thread_id: resume.threadId,
    token: resume.token,
    after_seq: String(resume.afterSeq),
  });
  return `${base}?${query.toString()}`;
}

/** Wait before reconnect attempt `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, then 10 s. */
export function backoffDelay(attempt: number): number {
  return Math.min(10_000, 1000 * 2 ** Math.max(0, attempt));
}
