import { describe, expect, it } from "vitest";
import type { SpanNode } from "./api/client";
import { layout, timeRange } from "./waterfall";

function span(id: string, parent: string | null, startMs: number, durMs: number): SpanNode {
  const start = new Date(Date.UTC(2026, 10, 30, 12, 0, 0) + startMs).toISOString();
  return {
    span_id: id,
    parent_span_id: parent,
    started_at: start,
    ended_at: new Date(new Date(start).getTime() + durMs).toISOString(),
    duration_ms: durMs,
    name: id,
  } as unknown as SpanNode;
}

describe("waterfall layout", () => {
  const spans = [
    span("c", "root", 600, 300),
    span("root", null, 0, 1000),
    span("a", "root", 100, 200),
    span("a1", "a", 150, 50),
  ];

  it("orders children under their parent by start, with depth", () => {
    const rows = layout(spans, new Set());
    expect(rows.map((r) => [r.span.span_id, r.depth])).toEqual([
      ["root", 0],
      ["a", 1],
      ["a1", 2],
      ["c", 1],
    ]);
    expect(rows[0].hasChildren).toBe(true);
    expect(rows[2].hasChildren).toBe(false);
  });

  it("places bars as fractions of the trace's range", () => {
    const rows = layout(spans, new Set());
    const c = rows.find((r) => r.span.span_id === "c")!;
    expect(c.left).toBeCloseTo(0.6);
    expect(c.width).toBeCloseTo(0.3);
    expect(timeRange(spans)).toEqual({
      start: Date.UTC(2026, 10, 30, 12, 0, 0),
      end: Date.UTC(2026, 10, 30, 12, 0, 1),
    });
  });

  it("hides a collapsed subtree", () => {
    const rows = layout(spans, new Set(["a"]));
    expect(rows.map((r) => r.span.span_id)).toEqual(["root", "a", "c"]);
    expect(rows[1].collapsed).toBe(true);
  });

  it("keeps orphans and survives cycles and 5,000-deep chains", () => {
    const odd = [span("x", "missing", 0, 10), span("p", "q", 0, 5), span("q", "p", 1, 5)];
    expect(layout(odd, new Set()).map((r) => r.span.span_id)).toEqual(["x"]);
    const chain = Array.from({ length: 5000 }, (_, i) => span(`s${i}`, i ? `s${i - 1}` : null, i, 1));
    const rows = layout(chain, new Set());
    expect(rows).toHaveLength(5000);
    expect(rows[4999].depth).toBe(4999);
  });
});
