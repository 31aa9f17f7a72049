import { ANALYTICS_RANGES, type AnalyticsRange } from '../../api/types';
import styles from './DashboardPage.module.css';
import { RANGE_LABELS } from './metrics';

interface RangeSelectorProps {
  value: AnalyticsRange;
  onChange: (range: AnalyticsRange) => void;
}

/** Segmented toggle buttons: each is a Tab stop, Enter or Space picks it, `aria-pressed` says which is on. */
export function RangeSelector({ value, onChange }: RangeSelectorProps) {
  return (
    <div className={styles.segmented} role="group" aria-label="Time range">
      {ANALYTICS_RANGES.map((range) => (
        <button
          key={range}
          type="button"
          className={styles.segment}
          aria-pressed={range === value}
          onClick={() => onChange(range)}
        >
          {RANGE_LABELS[range]}
        </button>
      ))}
    </div>
  );
}
