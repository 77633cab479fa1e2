import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/** A small daily line chart (uPlot): `days` as `YYYY-MM-DD`, one series. */
export function Chart(props: {
  title: string;
  days: string[];
  values: (number | null)[];
  format: (v: number | null) => string;
  color?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = props.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const plot = new uPlot(
      {
        width: Math.max(el.clientWidth, 240),
        height: 160,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [
          { stroke: "currentColor", grid: { stroke: "rgba(127,127,127,0.2)" } },
          {
            stroke: "currentColor",
            grid: { stroke: "rgba(127,127,127,0.2)" },
            size: 70,
            values: (_u, ticks) => ticks.map((t) => props.format(t)),
          },
        ],
        series: [{}, { label: props.title, stroke: props.color ?? "#1f5fd1", width: 2, spanGaps: false, points: { size: 4 } }],
      },
      [xs, props.values],
      el,
    );
    return () => plot.destroy();
  }, [props.days, props.values, props.title, props.color, props.format]);
  const last = props.values.filter((v) => v !== null).at(-1) ?? null;
  return (
    <figure className="chart">
      <figcaption>
        {props.title}: <strong>{props.format(last)}</strong> <span className="muted">(latest day)</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${props.title} per day`} />
    </figure>
  );
}
