import { describe, expect, it } from "vitest";
import { fromSearch, toQuery, toSearch } from "./filters";

describe("filters in the URL", () => {
  it("round-trips every filter and drops unknown keys and blanks", () => {
    const url = new URLSearchParams("agent=bot&model=gpt-4o&success=true&junk=1&q=&min_duration_ms=200");
    const f = fromSearch(url);
    expect(f).toEqual({ agent: "bot", model: "gpt-4o", success: "true", min_duration_ms: "200" });
    expect(fromSearch(toSearch(f))).toEqual(f);
    expect(toSearch(f).toString()).toBe("agent=bot&success=true&min_duration_ms=200&model=gpt-4o");
  });
  it("builds the list API's query with numbers and the cursor", () => {
    expect(toQuery({ agent: "bot", max_duration_ms: "900" }, "c1", 25)).toEqual({
      page_size: 25,
      agent: "bot",
      max_duration_ms: 900,
      cursor: "c1",
    });
  });
});
