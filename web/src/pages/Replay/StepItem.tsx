import { Link } from 'react-router-dom';
import { kindTone } from '../../api/eventKinds';
import type { ReplayStep } from '../../api/types';
import { JsonDetails } from '../../components/JsonDetails/JsonDetails';
import { formatDateTimeSeconds } from '../../lib/format';
import styles from './ReplayPage.module.css';
import { formatGap, gapMs, stepView } from './stepView';

/** One step of a conversation's timeline (the replay, and the desk's conversation view). */
export function StepItem({ step, previous }: { step: ReplayStep; previous: ReplayStep | undefined }) {
  const view = stepView(step);
  const gap = gapMs(previous, step);
  return (
    <li className={`${styles.step} ${styles[kindTone(step.kind)] ?? ''}`}>
      <div className={styles.stepHeader}>
        <span className={styles.kindLabel}>{view.title}</span>
        <code className={styles.kind}>{step.kind}</code>
        <span className={styles.seq}>#{step.seq}</span>
        <span className={styles.time}>
          <time dateTime={step.occurred_at}>{formatDateTimeSeconds(step.occurred_at)}</time>
          {gap !== null ? (
            <span className={styles.gap} title="Time since the step before">
              {' '}
              {formatGap(gap)}
            </span>
          ) : null}
        </span>
      </div>
      {view.text !== null ? <p className={styles.body}>{view.text}</p> : null}
      {view.facts.length > 0 || view.deadLetterId !== null ? (
        <p className={styles.facts}>
          {view.facts.map((fact) => (
            <span key={fact}>{fact}</span>
          ))}
          {view.deadLetterId !== null ? (
            <span>
              <Link to={`/dead-letters/${view.deadLetterId}`}>dead letter {view.deadLetterId}</Link>
            </span>
          ) : null}
        </p>
      ) : null}
      {view.aside ? (
        <div className={`${styles.aside} ${styles[kindTone(view.aside.kind)] ?? ''}`}>
          <p className={styles.kindLabel}>{view.aside.title}</p>
          {view.aside.text !== null ? <p className={styles.body}>{view.aside.text}</p> : null}
          {view.aside.facts.length > 0 ? (
            <p className={styles.facts}>
              {view.aside.facts.map((fact) => (
                <span key={fact}>{fact}</span>
              ))}
            </p>
          ) : null}
        </div>
      ) : null}
      {view.expanders.length > 0 ? (
        <div className={styles.expanders}>
          {view.expanders.map((expander) => (
            <JsonDetails key={expander.label} summary={expander.label} value={expander.value} />
          ))}
        </div>
      ) : null}
    </li>
  );
}

/** The steps as a vertical timeline ("Conversation steps"), or a line saying there are none. */
export function StepTimeline({ steps }: { steps: readonly ReplayStep[] }) {
  if (steps.length === 0) return <p className={styles.muted}>This conversation has no steps yet.</p>;
  return (
    <ol className={styles.timeline} aria-label="Conversation steps">
      {steps.map((step, index) => (
        <StepItem key={`${step.seq}-${step.event_id}`} step={step} previous={steps[index - 1]} />
      ))}
    </ol>
  );
}
