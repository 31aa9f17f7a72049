import { ANALYTICS_RANGES, type AnalyticsRange } from '../../api/types';
import { Segmented } from '../../components/Segmented/Segmented';
import { RANGE_LABELS } from './metrics';

interface RangeSelectorProps {
  value: AnalyticsRange;
  onChange: (range: AnalyticsRange) => void;
}

export function RangeSelector({ value, onChange }: RangeSelectorProps) {
  return (
    <Segmented
      label="Time range"
      options={ANALYTICS_RANGES}
      value={value}
      render={(range) => RANGE_LABELS[range]}
      onChange={onChange}
    />
  );
}
