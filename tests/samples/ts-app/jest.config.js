"use strict";

/** Jest runs only the plain-JS tests under jest/ (vitest owns src/). */
module.exports = {
  testMatch: ["<rootDir>/jest/**/*.test.js"],
  testEnvironment: "node",
};
