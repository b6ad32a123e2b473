// Makes solc-js (npm `solc`) answer like the native `solc` binary, for py-solc-x:
// `--version` and `--standard-json` (input on stdin). py-solc-x cannot download native compilers here.
//
//   node solc_shim.js <folder of the npm package solc> --version | --standard-json
//
// chain/contracts.py finds that folder (chain/tools.py) and runs this through a two-line executable wrapper, since
// py-solc-x only takes the path of one. Shipped inside the Python package (package data), so an installed copy
// (`pip install .`) has it too.
"use strict";

const [solcPackage, ...args] = process.argv.slice(2);
if (!solcPackage) {
  process.stderr.write("usage: node solc_shim.js <path of node_modules/solc> --version | --standard-json\n");
  process.exit(2);
}
const solc = require(solcPackage);

if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this shim supports only --version and --standard-json\n");
  process.exit(1);
}
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  process.stdout.write(solc.compile(input));
});
