import {
  BarController,
  BarElement,
  CategoryScale,
  Chart as ChartJS,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartOptions,
} from 'chart.js';
import { useId } from 'react';
import { Bar, Line } from 'react-chartjs-2';
import { tableStyles as table } from '../../components/DataTable/DataTable';
import { Disclosure } from '../../components/Disclosure/Disclosure';
import styles from './DashboardPage.module.css';

// Only the pieces these charts use, so the bundle carries no other chart types.
ChartJS.register(
  LineController,
  BarController,
  CategoryScale,
  LinearScale,
  PointElement,
  LineElement,
  BarElement,
  Tooltip,
  Legend,
);

export interface Series {
  label: string;
  values: ReadonlyArray<number | null>;
  /** A colour token of styles/tokens.css, e.g. `--tone-user`. */
  color: string;
}

interface SeriesChartProps {
  title: string;
  /** What the chart shows in a sentence: the canvas's accessible name. */
  summary: string;
  type: 'line' | 'bar';
  labels: ReadonlyArray<string>;
  series: ReadonlyArray<Series>;
  format: (value: number | null) => string;
  /** Counts: whole-number ticks. */
  integer?: boolean;
}

/** The canvas cannot read CSS custom properties, so the tokens are resolved here. */
function tokenColor(token: string, fallback: string): string {
  const value = getComputedStyle(document.documentElement).getPropertyValue(token).trim();
  return value || fallback;
}

function prefersReducedMotion(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

/**
 * One time-series chart (Chart.js on a canvas) with its numbers as a table behind a disclosure,
 * for screen readers and for anyone who wants exact values.
 */
export function SeriesChart({ title, summary, type, labels, series, format, integer = false }: SeriesChartProps) {
  const captionId = useId();
  const text = tokenColor('--color-text-muted', '#5b6477');
  const grid = tokenColor('--color-border', '#d9dde5');
  const data = {
    labels: [...labels],
    datasets: series.map((s) => {
      const color = tokenColor(s.color, text);
      return {
        label: s.label,
        data: [...s.values],
        borderColor: color,
        backgroundColor: color,
        borderWidth: 2,
        pointRadius: labels.length > 31 ? 0 : 2,
        spanGaps: false,
      };
    }),
  };
  const options: ChartOptions<'line' | 'bar'> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: prefersReducedMotion() ? false : { duration: 250 },
    interaction: { mode: 'index', intersect: false },
    plugins: {
      legend: { position: 'bottom', labels: { color: text, boxWidth: 12 } },
      tooltip: {
        callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${format(item.parsed.y)}` },
      },
    },
    scales: {
      x: { ticks: { color: text, maxRotation: 0, autoSkipPadding: 8 }, grid: { display: false } },
      y: {
        beginAtZero: true,
        ticks: { color: text, ...(integer ? { precision: 0 } : {}), callback: (value) => format(Number(value)) },
        grid: { color: grid },
      },
    },
  };
  const canvasProps = { role: 'img', 'aria-label': summary };

  return (
    <figure className={styles.chart} aria-labelledby={captionId}>
      <figcaption className={styles.chartTitle} id={captionId}>
        {title}
      </figcaption>
      <div className={styles.canvasBox}>
        {type === 'line' ? (
          <Line data={data} options={options as ChartOptions<'line'>} {...canvasProps} />
        ) : (
          <Bar data={data} options={options as ChartOptions<'bar'>} {...canvasProps} />
        )}
      </div>
      <Disclosure label={`${title}: the numbers`}>
        <div className={styles.numbersTable}>
          <table className={table.table}>
            <thead>
              <tr>
                <th scope="col">Time</th>
                {series.map((s) => (
                  <th scope="col" className={table.number} key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {labels.map((label, index) => (
                <tr key={`${label}-${index}`}>
                  <th scope="row" className={table.lead} data-label="Time">
                    {label}
                  </th>
                  {series.map((s) => (
                    <td className={table.number} data-label={s.label} key={s.label}>
                      {format(s.values[index] ?? null)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Disclosure>
    </figure>
  );
}
