import { useId } from 'react';
import styles from './DashboardPage.module.css';
import type { Metric } from './metrics';

/**
 * One number of the dashboard: a region named after the metric (`getByRole('region', { name:
 * 'Conversations' })`), its value as text and, for tests and scripts, as `data-value` (empty when
 * there is none).
 */
export function MetricCard({ metric }: { metric: Metric }) {
  const titleId = useId();
  return (
    <section className={styles.card} aria-labelledby={titleId}>
      <h3 className={styles.cardTitle} id={titleId}>
        {metric.name}
      </h3>
      <p className={styles.cardValue} data-value={metric.raw ?? ''}>
        {metric.value}
      </p>
      <p className={styles.cardHint}>{metric.hint}</p>
    </section>
  );
}
