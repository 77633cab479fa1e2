// The traces explorer's filters, kept in the URL: every filter of the
// list API, so a reload or a shared link shows the same list.

export const FILTER_KEYS = [
  "agent",
  "status",
  "success",
  "outcome",
  "start",
  "end",
  "min_duration_ms",
  "max_duration_ms",
  "model",
  "span_type",
  "q",
  "attribute",
  "sort",
  "order",
] as const;

export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Partial<Record<FilterKey, string>>;

/** The filters a URL's query holds (unknown keys and empty values dropped). */
export function fromSearch(search: URLSearchParams): Filters {
  const out: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = search.get(k);
    if (v !== null && v.trim() !== "") out[k] = v.trim();
  }
  return out;
}

/** The URL query of some filters, in a stable order (cursor excluded). */
export function toSearch(filters: Filters): URLSearchParams {
  const out = new URLSearchParams();
  for (const k of FILTER_KEYS) {
    const v = filters[k];
    if (v !== undefined && v.trim() !== "") out.set(k, v.trim());
  }
  return out;
}

/** The list API's query for the filters and an optional cursor. */
export function toQuery(filters: Filters, cursor?: string | null, pageSize = 50): Record<string, string | number> {
  const q: Record<string, string | number> = { page_size: pageSize };
  for (const [k, v] of toSearch(filters)) q[k] = k.endsWith("_ms") ? Number(v) : v;
  if (cursor) q.cursor = cursor;
  return q;
}
