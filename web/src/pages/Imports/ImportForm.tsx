import { useId, useState, type FormEvent } from 'react';
import { importDocument, importUrl } from '../../api/client';
import type { ImportAccepted } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { fieldStyles as field } from '../../components/Field/Field';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { FileText, PastedText, SourcePicker, textSourceStyles, useTextFile } from '../../components/TextSource/TextSource';
import { actionError } from './importText';

type Source = 'paste' | 'file' | 'url';

const SOURCES: ReadonlyArray<{ value: Source; label: string }> = [
  { value: 'paste', label: 'Paste the document' },
  { value: 'file', label: 'Upload a file' },
  { value: 'url', label: 'From a URL' },
];

/** The three ways to bring a document: pasted text, a file read as text, or a URL the server fetches. */
export function ImportForm({ onStarted }: { onStarted: (accepted: ImportAccepted) => void }) {
  const id = useId();
  const request = useOperatorRequest();
  const [source, setSource] = useState<Source>('paste');
  const [text, setText] = useState('');
  const picked = useTextFile();
  const [url, setUrl] = useState('');

  const body = source === 'paste' ? text.trim() : source === 'file' ? (picked.file?.text.trim() ?? '') : url.trim();
  const ready = body !== '' && !request.loading;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!ready) return;
    const start = source === 'url' ? () => importUrl(body) : () => importDocument(body);
    request.run(
      () => start().catch((caught: unknown) => Promise.reject(actionError('The import was not started', caught))),
      onStarted,
    );
  };

  return (
    <>
      <form className={textSourceStyles.form} aria-label="Import an OpenAPI document" onSubmit={submit}>
        <SourcePicker
          name={`${id}-source`}
          legend="Where the document comes from"
          options={SOURCES}
          value={source}
          onChange={setSource}
        />
        {source === 'paste' ? (
          <PastedText id={`${id}-text`} label="OpenAPI document (JSON or YAML)" value={text} onChange={setText} />
        ) : null}
        {source === 'file' ? (
          <FileText
            id={`${id}-file`}
            label="OpenAPI file (JSON or YAML)"
            accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml,text/plain"
            picked={picked}
          />
        ) : null}
        {source === 'url' ? (
          <div className={field.field}>
            <label htmlFor={`${id}-url`} className={field.label}>
              Document URL
            </label>
            <input
              id={`${id}-url`}
              className={field.control}
              type="url"
              inputMode="url"
              placeholder="https://api.example/openapi.yaml"
              value={url}
              spellCheck={false}
              autoComplete="off"
              onChange={(event) => setUrl(event.target.value)}
            />
          </div>
        ) : null}

        <div>
          <Button type="submit" variant="primary" disabled={!ready}>
            {request.loading ? 'Importing…' : 'Import'}
          </Button>
        </div>
      </form>
      {/* Outside the form: the token prompt is a form of its own. */}
      <RequestStatus request={request} />
    </>
  );
}
