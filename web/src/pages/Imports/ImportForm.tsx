import { useId, useState, type ChangeEvent, type FormEvent } from 'react';
import { importDocument, importUrl } from '../../api/client';
import type { ImportAccepted } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { fieldStyles as field } from '../../components/Field/Field';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { actionError } from './importText';
import styles from './ImportsPage.module.css';

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
  const [file, setFile] = useState<{ name: string; text: string } | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const [url, setUrl] = useState('');

  const onFile = (event: ChangeEvent<HTMLInputElement>) => {
    const picked = event.target.files?.[0];
    setFile(null);
    setFileError(null);
    if (!picked) return;
    picked.text().then(
      (content) => setFile({ name: picked.name, text: content }),
      () => setFileError(`Could not read ${picked.name}.`),
    );
  };

  const body = source === 'paste' ? text.trim() : source === 'file' ? (file?.text.trim() ?? '') : url.trim();
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
      <form className={styles.form} aria-label="Import an OpenAPI document" onSubmit={submit}>
        <fieldset className={styles.sources}>
          <legend className={styles.legend}>Where the document comes from</legend>
          {SOURCES.map((option) => (
            <label key={option.value} className={styles.radio}>
              <input
                type="radio"
                name={`${id}-source`}
                value={option.value}
                checked={source === option.value}
                onChange={() => setSource(option.value)}
              />
              {option.label}
            </label>
          ))}
        </fieldset>

        {source === 'paste' ? (
          <div className={field.field}>
            <label htmlFor={`${id}-text`} className={field.label}>
              OpenAPI document (JSON or YAML)
            </label>
            <textarea
              id={`${id}-text`}
              className={`${field.control} ${styles.textarea}`}
              value={text}
              rows={10}
              spellCheck={false}
              onChange={(event) => setText(event.target.value)}
            />
          </div>
        ) : null}
        {source === 'file' ? (
          <div className={field.field}>
            <label htmlFor={`${id}-file`} className={field.label}>
              OpenAPI file (JSON or YAML)
            </label>
            <input
              id={`${id}-file`}
              type="file"
              accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml,text/plain"
              onChange={onFile}
            />
            {file ? (
              <p className={styles.hint} role="status">
                Read {file.name} ({file.text.length} characters).
              </p>
            ) : null}
            {fileError ? (
              <p className={styles.hint} role="alert">
                {fileError}
              </p>
            ) : null}
          </div>
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
