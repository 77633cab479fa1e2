import { describe, expect, it } from "vitest";
import { diffLines } from "./diff";

describe("line diff of prompt versions", () => {
  it("keeps common lines and marks the changes", () => {
    const d = diffLines(
      "You are a classifier.\nClassify: {{x}}",
      "You are an expert classifier.\nThink step by step.\nClassify: {{x}}",
    );
    expect(d).toEqual([
      { kind: "removed", text: "You are a classifier." },
      { kind: "added", text: "You are an expert classifier." },
      { kind: "added", text: "Think step by step." },
      { kind: "same", text: "Classify: {{x}}" },
    ]);
  });
  it("handles identical and empty texts", () => {
    expect(diffLines("a\nb", "a\nb").every((l) => l.kind === "same")).toBe(true);
    expect(diffLines("", "x")).toEqual([
      { kind: "removed", text: "" },
      { kind: "added", text: "x" },
    ]);
  });
  it("stays bounded on very long texts", () => {
    const long = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join("\n");
    const d = diffLines(long, long.replace("line 5\n", "line five\n"));
    expect(d.filter((l) => l.kind !== "same")).toHaveLength(2);
  });
});
