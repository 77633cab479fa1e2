// A sparkline: a tiny SVG line of a daily series, cheap enough for one per
// row of a long table (no chart instance per row).

/** The SVG `points` of `values` in a `width` x `height` box (1 px inset):
 * x spread evenly, y scaled from 0 to the largest value (flat at the
 * bottom when every value is 0); a null value counts as 0. */
export function sparkPoints(values: (number | null)[], width: number, height: number): string {
  if (values.length === 0) return "";
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  const step = values.length > 1 ? (width - 2) / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const x = 1 + i * step;
      const y = height - 1 - (max > 0 ? ((v ?? 0) / max) * (height - 2) : 0);
      return `${round(x)},${round(y)}`;
    })
    .join(" ");
}

const round = (n: number) => Math.round(n * 10) / 10;

export function Sparkline(props: { values: (number | null)[]; label: string; width?: number; height?: number }) {
  const width = props.width ?? 120;
  const height = props.height ?? 28;
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img">
      <title>{props.label}</title>
      <polyline points={sparkPoints(props.values, width, height)} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}
