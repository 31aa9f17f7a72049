import { useId, useState, type FormEvent } from 'react';
import { startRegress } from '../../api/client';
import type { RegressAccepted, RegressRequest } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../../components/Button/Button';
import { FilterBar, SelectField, TextField } from '../../components/Field/Field';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { FileText, PastedText, SourcePicker, textSourceStyles, useTextFile } from '../../components/TextSource/TextSource';
import { actionError } from '../Imports/importText';
import { configName, threadIds } from './regressText';

type Source = 'file' | 'paste';

const SOURCES: ReadonlyArray<{ value: Source; label: string }> = [
  { value: 'file', label: 'Upload a file' },
  { value: 'paste', label: 'Paste the config' },
];

type Since = '' | '24h' | '7d' | '30d';

const SINCE: ReadonlyArray<{ value: Since; label: string }> = [
  { value: '', label: 'Every recorded turn' },
  { value: '24h', label: 'The last 24 hours' },
  { value: '7d', label: 'The last 7 days' },
  { value: '30d', label: 'The last 30 days' },
];

/** The config to try (a YAML file or pasted text) and which recorded turns to replay it on. */
export function RegressForm({ onStarted }: { onStarted: (accepted: RegressAccepted) => void }) {
  const id = useId();
  const request = useOperatorRequest();
  const [source, setSource] = useState<Source>('file');
  const [text, setText] = useState('');
  const picked = useTextFile();
  const [since, setSince] = useState<Since>('');
  const [threads, setThreads] = useState('');
  const [limit, setLimit] = useState('');

  const file = picked.file;
  const config = source === 'paste' ? text : (file?.text ?? '');
  const ready = config.trim() !== '' && !request.loading;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!ready) return;
    const body: RegressRequest = {
      config,
      name: source === 'file' && file ? configName(file.name) : 'pasted.yaml',
    };
    if (since) body.since = since;
    const ids = threadIds(threads);
    if (ids.length) body.thread_ids = ids;
    if (limit.trim() !== '') body.limit = Number(limit.trim());
    request.run(
      () => startRegress(body).catch((caught: unknown) => Promise.reject(actionError('The run was not started', caught))),
      onStarted,
    );
  };

  return (
    <>
      <form className={textSourceStyles.form} aria-label="Try a changed agents config" onSubmit={submit}>
        <SourcePicker
          name={`${id}-source`}
          legend="Where the config comes from"
          options={SOURCES}
          value={source}
          onChange={setSource}
        />
        {source === 'file' ? (
          <FileText
            id={`${id}-file`}
            label="Agents config file (YAML)"
            accept=".yaml,.yml,application/yaml,text/yaml,text/plain"
            picked={picked}
          />
        ) : (
          <PastedText id={`${id}-text`} label="Agents config (YAML)" value={text} onChange={setText} rows={12} />
        )}
        <FilterBar label="Which recorded turns">
          <SelectField label="Turns since" value={since} options={SINCE} onChange={setSince} />
          <TextField label="Only these threads" value={threads} onChange={setThreads} placeholder="thread ids, comma-separated" />
          <TextField label="At most (the last N turns)" value={limit} onChange={setLimit} placeholder="all" />
        </FilterBar>
        <div>
          <Button type="submit" variant="primary" disabled={!ready}>
            {request.loading ? 'Starting…' : 'Run'}
          </Button>
        </div>
      </form>
      {/* Outside the form: the token prompt is a form of its own. */}
      <RequestStatus request={request} />
    </>
  );
}
