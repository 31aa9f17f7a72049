import { useState, type ChangeEvent } from 'react';
import { fieldStyles as field } from '../Field/Field';
import styles from './TextSource.module.css';

/** Class names of a form that takes a document: `form` (the framed form), `hint`. */
export const textSourceStyles = styles;

interface SourcePickerProps<S extends string> {
  /** The radios' group name (unique on the page, e.g. from `useId`). */
  name: string;
  legend: string;
  options: ReadonlyArray<{ value: S; label: string }>;
  value: S;
  onChange: (value: S) => void;
}

/** Where a document comes from, as radios: pasted, a file, … */
export function SourcePicker<S extends string>({ name, legend, options, value, onChange }: SourcePickerProps<S>) {
  return (
    <fieldset className={styles.sources}>
      <legend className={styles.legend}>{legend}</legend>
      {options.map((option) => (
        <label key={option.value} className={styles.radio}>
          <input type="radio" name={name} value={option.value} checked={value === option.value} onChange={() => onChange(option.value)} />
          {option.label}
        </label>
      ))}
    </fieldset>
  );
}

interface PastedTextProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  rows?: number;
}

/** A document pasted as text (monospace, no spell check). */
export function PastedText({ id, label, value, onChange, rows = 10 }: PastedTextProps) {
  return (
    <div className={field.field}>
      <label htmlFor={id} className={field.label}>
        {label}
      </label>
      <textarea
        id={id}
        className={`${field.control} ${styles.textarea}`}
        value={value}
        rows={rows}
        spellCheck={false}
        onChange={(event) => onChange(event.target.value)}
      />
    </div>
  );
}

/** A file read as text: its name and content. */
export interface TextFile {
  name: string;
  text: string;
}

/** The file picked in a `FileText`, read as text (`null` until one is read). */
export function useTextFile() {
  const [file, setFile] = useState<TextFile | null>(null);
  const [error, setError] = useState<string | null>(null);
  const onFile = (event: ChangeEvent<HTMLInputElement>) => {
    const picked = event.target.files?.[0];
    setFile(null);
    setError(null);
    if (!picked) return;
    picked.text().then(
      (content) => setFile({ name: picked.name, text: content }),
      () => setError(`Could not read ${picked.name}.`),
    );
  };
  return { file, error, onFile };
}

interface FileTextProps {
  id: string;
  label: string;
  accept: string;
  picked: ReturnType<typeof useTextFile>;
}

/** A file input that says what it read (or that it could not). */
export function FileText({ id, label, accept, picked }: FileTextProps) {
  return (
    <div className={field.field}>
      <label htmlFor={id} className={field.label}>
        {label}
      </label>
      <input id={id} type="file" accept={accept} onChange={picked.onFile} />
      {picked.file ? (
        <p className={styles.hint} role="status">
          Read {picked.file.name} ({picked.file.text.length} characters).
        </p>
      ) : null}
      {picked.error ? (
        <p className={styles.hint} role="alert">
          {picked.error}
        </p>
      ) : null}
    </div>
  );
}
