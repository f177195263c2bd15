"use strict";

const { slug, initials } = require("../lib/strings");

describe("slug", () => {
  test("lowercases and joins words", () => {
    expect(slug("Hello World")).toBe("hello-world");
  });
  test("drops punctuation at the ends", () => {
    expect(slug("  ¡Hola, amigo!  ")).toBe("hola-amigo");
  });
});

describe("initials", () => {
  test("takes the first letter of each word", () => {
    expect(initials("ada king lovelace")).toBe("AKL");
  });
  test("ignores extra spaces", () => {
    expect(initials("  grace   hopper ")).toBe("GH");
  });
});
