import { describe, expect, it } from "vitest";
import { cartTotal, lineTotal } from "./cart";
import { add, format } from "./money";

const eur = (cents: number) => ({ cents, currency: "EUR" });

describe("money", () => {
  it("adds prices", () => {
    expect(add(eur(150), eur(250))).toEqual(eur(400));
  });
  it("refuses mixed currencies", () => {
    expect(() => add(eur(1), { cents: 1, currency: "USD" })).toThrow("cannot add");
  });
  it("formats cents", () => {
    expect(format(eur(1234))).toBe("12.34 EUR");
  });
});

describe("cart", () => {
  it("multiplies a line", () => {
    expect(lineTotal({ name: "tea", unit: eur(300), quantity: 2 })).toEqual(eur(600));
  });
  it("sums lines", () => {
    const lines = [
      { name: "tea", unit: eur(300), quantity: 2 },
      { name: "cake", unit: eur(450), quantity: 1 },
    ];
    expect(cartTotal(lines, "EUR")).toEqual(eur(1050));
  });
});
