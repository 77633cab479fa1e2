// The trace waterfall's layout: the span tree flattened in display order
// (children under their parent, by start), with collapsed subtrees hidden,
// and each row's bar as a fraction of the trace's time range.
import type { SpanNode } from "./api/client";

export interface Row {
  span: SpanNode;
  depth: number;
  hasChildren: boolean;
  collapsed: boolean;
  /** Bar start and width as fractions (0..1) of the trace's range. */
  left: number;
  width: number;
}

const t = (iso: string | null | undefined): number | null => {
  if (!iso) return null;
  const v = new Date(iso).getTime();
  return Number.isNaN(v) ? null : v;
};

export function timeRange(spans: SpanNode[]): { start: number; end: number } {
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    const a = t(s.started_at);
    if (a === null) continue;
    const b = t(s.ended_at) ?? (s.duration_ms != null ? a + s.duration_ms : a);
    start = Math.min(start, a);
    end = Math.max(end, b);
  }
  if (!Number.isFinite(start)) return { start: 0, end: 1 };
  return { start, end: Math.max(end, start + 1) };
}

export function layout(spans: SpanNode[], collapsed: ReadonlySet<string>): Row[] {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map<string, SpanNode[]>();
  const roots: SpanNode[] = [];
  for (const s of spans) {
    const p = s.parent_span_id;
    if (p && byId.has(p) && p !== s.span_id) {
      const list = children.get(p) ?? [];
      list.push(s);
      children.set(p, list);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: SpanNode, b: SpanNode) =>
    (t(a.started_at) ?? 0) - (t(b.started_at) ?? 0) || a.span_id.localeCompare(b.span_id);
  const { start, end } = timeRange(spans);
  const range = end - start;
  const rows: Row[] = [];
  const seen = new Set<string>();
  // Iterative depth-first walk (deep traces must not overflow the stack).
  const stack: { span: SpanNode; depth: number }[] = roots
    .sort(byStart)
    .reverse()
    .map((span) => ({ span, depth: 0 }));
  while (stack.length) {
    const { span, depth } = stack.pop()!;
    if (seen.has(span.span_id)) continue; // a cycle in bad data
    seen.add(span.span_id);
    const kids = (children.get(span.span_id) ?? []).slice().sort(byStart);
    const a = t(span.started_at) ?? start;
    const b = t(span.ended_at) ?? (span.duration_ms != null ? a + span.duration_ms : a);
    const isCollapsed = collapsed.has(span.span_id);
    rows.push({
      span,
      depth,
      hasChildren: kids.length > 0,
      collapsed: isCollapsed,
      left: (a - start) / range,
      width: Math.max((b - a) / range, 0.002),
    });
    if (!isCollapsed) for (let i = kids.length - 1; i >= 0; i--) stack.push({ span: kids[i], depth: depth + 1 });
  }
  return rows;
}
