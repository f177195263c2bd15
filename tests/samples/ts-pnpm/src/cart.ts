import { add, type Price } from "./money";

export interface Line {
  name: string;
  unit: Price;
  quantity: number;
}

export function lineTotal(line: Line): Price {
  return { cents: line.unit.cents * line.quantity, currency: line.unit.currency };
}

export function cartTotal(lines: Line[], currency: string): Price {
  return lines.map(lineTotal).reduce(add, { cents: 0, currency });
}
