import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const PALETTE = [
  "#1f5fd1",
  "#137333",
  "#b45309",
  "#6d28d9",
  "#be185d",
  "#0f766e",
  "#4b5563",
  "#b42318",
  "#7c3aed",
  "#0369a1",
];

/** A small daily line chart (uPlot): `days` as `YYYY-MM-DD`, one series
 * (`values`) or several (`series`, with a legend). */
export function Chart(props: {
  title: string;
  /** `YYYY-MM-DD` per point, or `times` (unix seconds). */
  days: string[];
  times?: number[];
  values?: (number | null)[];
  series?: { label: string; values: (number | null)[] }[];
  format: (v: number | null) => string;
  color?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = props.times ?? props.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const plot = new uPlot(
      {
        width: Math.max(el.clientWidth, 240),
        height: 160,
        legend: { show: !!props.series },
        // One point alone would be spread over years: pad it by a day.
        scales: {
          x: { time: true, range: (_u, min, max) => (min === max ? [min - 86_400, max + 86_400] : [min, max]) },
        },
        axes: [
          { stroke: "currentColor", grid: { stroke: "rgba(127,127,127,0.2)" } },
          {
            stroke: "currentColor",
            grid: { stroke: "rgba(127,127,127,0.2)" },
            size: 70,
            values: (_u, ticks) => ticks.map((t) => props.format(t)),
          },
        ],
        series: [
          {},
          ...(props.series ?? [{ label: props.title, values: props.values ?? [] }]).map((s, i) => ({
            label: s.label,
            stroke: props.series ? PALETTE[i % PALETTE.length] : (props.color ?? PALETTE[0]),
            width: 2,
            spanGaps: false,
            points: { show: true, size: 4 },
          })),
        ],
      },
      [xs, ...(props.series ? props.series.map((s) => s.values) : [props.values ?? []])],
      el,
    );
    return () => plot.destroy();
  }, [props.days, props.times, props.values, props.series, props.title, props.color, props.format]);
  const last = (props.values ?? []).filter((v) => v !== null).at(-1) ?? null;
  return (
    <figure className="chart">
      <figcaption>
        {props.title}
        {!props.series && (
          <>
            : <strong>{props.format(last)}</strong> <span className="muted">(latest)</span>
          </>
        )}
      </figcaption>
      <div ref={box} role="img" aria-label={props.series ? props.title : `${props.title} per day`} />
    </figure>
  );
}
