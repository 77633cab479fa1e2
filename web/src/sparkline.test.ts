import { describe, expect, it } from "vitest";
import { sparkPoints } from "./Sparkline";

describe("sparkPoints", () => {
  it("spreads x evenly and scales y to the largest value", () => {
    expect(sparkPoints([0, 5, 10], 102, 22)).toBe("1,21 51,11 101,1");
  });
  it("draws nulls as zero and an all-zero series flat at the bottom", () => {
    expect(sparkPoints([null, 0], 12, 10)).toBe("1,9 11,9");
  });
  it("draws one value at the left edge, and nothing for no values", () => {
    expect(sparkPoints([3], 50, 10)).toBe("1,1");
    expect(sparkPoints([], 50, 10)).toBe("");
  });
});
