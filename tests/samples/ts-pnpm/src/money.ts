export interface Price {
  cents: number;
  currency: string;
}

export function add(a: Price, b: Price): Price {
  if (a.currency !== b.currency) {
    throw new Error(`cannot add ${a.currency} to ${b.currency}`);
  }
  return { cents: a.cents + b.cents, currency: a.currency };
}

export function format(p: Price): string {
  return `${(p.cents / 100).toFixed(2)} ${p.currency}`;
}
