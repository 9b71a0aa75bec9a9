// Compiles VoucherCheck.sol (next to this file) with the npm `solc` package and writes
// VoucherCheck.json: ABI, selectors, creation and runtime bytecode. See README.md for the command.
// The solc version is pinned so the committed bytecode is reproducible byte for byte.
const EXPECTED_SOLC = "0.8.28+commit.7893614a";
const fs = require("fs");
const path = require("path");
const solc = require("solc");
const dir = __dirname;
if (!solc.version().startsWith(EXPECTED_SOLC)) {
  console.error("need solc " + EXPECTED_SOLC + ", got " + solc.version());
  process.exit(1);
}
const source = fs.readFileSync(path.join(dir, "VoucherCheck.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "VoucherCheck.sol": { content: source } },
  settings: {
    evmVersion: "paris",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const c = output.contracts["VoucherCheck.sol"].VoucherCheck;
const out = {
  contractName: "VoucherCheck",
  source: "VoucherCheck.sol",
  sourceSha256: require("crypto").createHash("sha256").update(source).digest("hex"),
  compiler: { name: "solc (npm solc, soljson)", version: solc.version() },
  settings: input.settings,
  abi: c.abi,
  methodIdentifiers: c.evm.methodIdentifiers,
  bytecode: "0x" + c.evm.bytecode.object,
  deployedBytecode: "0x" + c.evm.deployedBytecode.object,
};
fs.writeFileSync(path.join(dir, "VoucherCheck.json"), JSON.stringify(out, null, 2) + "\n");
console.log("wrote VoucherCheck.json with solc " + solc.version());
