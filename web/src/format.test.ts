import { describe, expect, it } from "vitest";
import { ago, count, ms, percent, usd } from "./format";

describe("formatting with units", () => {
  it("durations", () => {
    expect(ms(null)).toBe("–");
    expect(ms(0.5)).toBe("0.50 ms");
    expect(ms(245)).toBe("245 ms");
    expect(ms(1500)).toBe("1.50 s");
    expect(ms(42_000)).toBe("42.0 s");
    expect(ms(125_000)).toBe("2 min 5 s");
  });
  it("money from numbers and decimal strings", () => {
    expect(usd("0.004500")).toBe("$0.0045");
    expect(usd(12.5)).toBe("$12.50");
    expect(usd(0)).toBe("$0");
    expect(usd(null)).toBe("–");
    expect(usd("nope")).toBe("–");
  });
  it("percentages and counts", () => {
    expect(percent(66.66)).toBe("66.7%");
    expect(percent(null)).toBe("–");
    expect(count(1234)).toBe("1,234");
    expect(count(12_345)).toBe("12.3k");
    expect(count(2_500_000, "tok")).toBe("2.5M tok");
  });
  it("relative times", () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    expect(ago(new Date(now - 30_000).toISOString(), now)).toBe("30 s ago");
    expect(ago(new Date(now - 3 * 3600_000).toISOString(), now)).toBe("3 h ago");
    expect(ago(new Date(now + 5000).toISOString(), now)).toBe("just now");
    expect(ago(null, now)).toBe("–");
  });
});
