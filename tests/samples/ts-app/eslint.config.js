"use strict";

const js = require("@eslint/js");

const jestGlobals = { describe: "readonly", test: "readonly", expect: "readonly" };
const nodeGlobals = { console: "readonly", module: "writable", require: "readonly" };

module.exports = [
  { ignores: ["node_modules/", "src/"] },
  js.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { ...nodeGlobals, ...jestGlobals },
    },
    rules: { "no-console": "warn" },
  },
];
