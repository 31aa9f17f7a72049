import { render } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { MATCH_END, MATCH_START, Snippet, snippetParts } from './Snippet';

const marked = (word: string) => `${MATCH_START}${word}${MATCH_END}`;

describe('search snippet', () => {
  it('splits the text at the markers into matches and the rest', () => {
    expect(snippetParts(`I want a ${marked('refund')} for ${marked('order')} 12`)).toEqual([
      { text: 'I want a ', match: false },
      { text: 'refund', match: true },
      { text: ' for ', match: false },
      { text: 'order', match: true },
      { text: ' 12', match: false },
    ]);
    expect(snippetParts('no match here')).toEqual([{ text: 'no match here', match: false }]);
    expect(snippetParts('')).toEqual([]);
  });

  it('marks the matches and shows markup in the text as text', () => {
    const { container } = render(<Snippet snippet={`<img src=x onerror=alert(1)> ${marked('<b>refund</b>')}`} />);
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('b')).toBeNull();
    const marks = container.querySelectorAll('mark');
    expect(marks).toHaveLength(1);
    expect(marks[0]?.textContent).toBe('<b>refund</b>');
    expect(container.textContent).toBe('<img src=x onerror=alert(1)> <b>refund</b>');
  });
});
