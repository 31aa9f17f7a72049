import { describe, expect, test } from 'vitest';

// Every page shows what users, tools and API authors wrote as text: React escapes what it renders,
// unless code hands it HTML. This keeps any way of doing that out of the app's source (the browser
// test e2e/escaping.e2e.ts checks the pages themselves).
const sources = import.meta.glob<string>(['./**/*.{ts,tsx}', '!./**/*.test.{ts,tsx}'], {
  query: '?raw',
  import: 'default',
  eager: true,
});

const RAW_HTML = [
  'dangerouslySetInnerHTML',
  'innerHTML',
  'outerHTML',
  'insertAdjacentHTML',
  'document.write',
  'createContextualFragment',
  'DOMParser',
  'eval(',
  'new Function(',
  'javascript:',
];

describe('the web app source', () => {
  test('is all read', () => {
    expect(Object.keys(sources)).toContain('./pages/Chat/MessageList.tsx');
    expect(Object.keys(sources).length).toBeGreaterThan(30);
  });

  test('never hands HTML to the page', () => {
    const found = Object.entries(sources).flatMap(([file, text]) =>
      RAW_HTML.filter((needle) => text.includes(needle)).map((needle) => `${file}: ${needle}`),
    );
    expect(found).toEqual([]);
  });
});
