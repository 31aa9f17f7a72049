import { Fragment } from 'react';
import styles from './ConversationsPage.module.css';

/**
 * Open and close a match in a search snippet (`GET /api/conversations?q=`, docs/rest.md):
 * private-use characters the server keeps out of the text itself, so they mark matches only.
 */
export const MATCH_START = '\uE000';
export const MATCH_END = '\uE001';

export interface SnippetPart {
  text: string;
  match: boolean;
}

/** The snippet as plain text pieces, each a match or not (the markers themselves dropped). */
export function snippetParts(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let match = false;
  let text = '';
  for (const char of snippet) {
    if (char === MATCH_START || char === MATCH_END) {
      if (text) parts.push({ text, match });
      text = '';
      match = char === MATCH_START;
    } else {
      text += char;
    }
  }
  if (text) parts.push({ text, match });
  return parts;
}

/** A search snippet with its matches in `<mark>`: text nodes only, never parsed as HTML. */
export function Snippet({ snippet }: { snippet: string }) {
  return (
    <span className={styles.snippet}>
      {snippetParts(snippet).map((part, index) =>
        part.match ? <mark key={index}>{part.text}</mark> : <Fragment key={index}>{part.text}</Fragment>,
      )}
    </span>
  );
}
