import { useId, type FormEvent, type ReactNode } from 'react';
import styles from './Field.module.css';

/** Class names of a labelled control (`field`, `label`, `control`), for a control the helpers below do not make. */
export const fieldStyles = styles;

interface FilterBarProps {
  /** Names the group of filters for screen readers, e.g. "Filter dead letters". */
  label: string;
  children: ReactNode;
  /** Given: the controls are a form whose submit (Enter in a text box) calls it. */
  onSubmit?: () => void;
}

/** A row of labelled filter controls that wraps on narrow screens. */
export function FilterBar({ label, children, onSubmit }: FilterBarProps) {
  if (!onSubmit) {
    return (
      <div className={styles.bar} role="group" aria-label={label}>
        {children}
      </div>
    );
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSubmit();
  };
  return (
    <form className={styles.bar} aria-label={label} onSubmit={submit}>
      {children}
    </form>
  );
}

/** A control under its label; `control` gets the id that ties the two together. */
function Labelled({ label, control }: { label: string; control: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className={styles.field}>
      <label className={styles.label} htmlFor={id}>
        {label}
      </label>
      {control(id)}
    </div>
  );
}

interface SelectFieldProps<V extends string> {
  label: string;
  value: V;
  options: ReadonlyArray<{ value: V; label: string }>;
  onChange: (value: V) => void;
}

export function SelectField<V extends string>({ label, value, options, onChange }: SelectFieldProps<V>) {
  return (
    <Labelled
      label={label}
      control={(id) => (
        <select
          id={id}
          className={styles.control}
          value={value}
          onChange={(event) => {
            const picked = options.find((option) => option.value === event.target.value);
            if (picked) onChange(picked.value);
          }}
        >
          {options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    />
  );
}

interface TextFieldProps {
  label: string;
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'datetime-local' | 'search';
  placeholder?: string;
}

export function TextField({ label, value, onChange, type = 'text', placeholder }: TextFieldProps) {
  return (
    <Labelled
      label={label}
      control={(id) => (
        <input
          id={id}
          className={styles.control}
          type={type}
          value={value}
          placeholder={placeholder}
          spellCheck={false}
          autoComplete="off"
          onChange={(event) => onChange(event.target.value)}
        />
      )}
    />
  );
}
