// The typed API client: paths, parameters and bodies come from the
// OpenAPI document the server generates (`npm run gen:api` writes
// schema.d.ts from ../docs/openapi.json), never written by hand. The
// session is the contract's HttpOnly cookie: nothing secret is kept in
// local storage.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Run = Schemas["Run"];
export type TraceList = Schemas["TraceList"];
export type TraceDetail = Schemas["TraceDetail"];
export type SpanNode = Schemas["SpanNode"];
export type AgentSummary = Schemas["AgentSummary"];
export type ApiKey = Schemas["ApiKey"];

export const api = createClient<paths>({ baseUrl: "/api/v1", credentials: "same-origin" });

/** An API failure as the user should read it. */
export class ApiFailure extends Error {
  constructor(
    public status: number,
    detail: string,
  ) {
    super(detail);
  }
}

/** The message of a failed call: the server's `detail`, or what went wrong. */
export function failure(status: number, error: unknown): ApiFailure {
  const detail =
    error && typeof error === "object" && "detail" in error && typeof (error as { detail: unknown }).detail === "string"
      ? (error as { detail: string }).detail
      : "";
  if (status === 503) return new ApiFailure(status, detail || "The service is busy; retry shortly.");
  if (status === 429) return new ApiFailure(status, detail || "Too many requests; retry shortly.");
  if (status === 401) return new ApiFailure(status, "Your session has ended; log in again.");
  return new ApiFailure(status, detail || `The request failed (HTTP ${status}).`);
}

/** Unwrap an openapi-fetch result, throwing an ApiFailure. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || r.data === undefined) throw failure(r.response.status, r.error);
  return r.data;
}
