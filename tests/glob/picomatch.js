// Reads "glob<TAB>path" lines on stdin and prints, per line, whether
// picomatch matches with its defaults and with { dot: true }: "1 1", "0 1"...
// ("E" where picomatch throws). Infisical matches scopes with picomatch.
"use strict";
const picomatch = require("picomatch");
const lines = require("fs").readFileSync(0, "utf8").split("\n");
const out = [];
const run = (path, glob, options) => {
  try {
    return picomatch.isMatch(path, glob, options) ? "1" : "0";
  } catch (_) {
    return "E";
  }
};
for (const line of lines) {
  if (line === "") continue;
  const [glob, path] = line.split("\t");
  out.push(`${run(path, glob, {})} ${run(path, glob, { dot: true })}`);
}
process.stdout.write(out.join("\n") + "\n");
