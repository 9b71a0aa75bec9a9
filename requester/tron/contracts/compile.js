// Compiles every *.sol file next to this script with the npm `solc` package and writes one
// JSON artifact per contract (ABI, selectors, creation and runtime bytecode, the source's
// SHA-256). See README.md for the command. The solc version is pinned so the committed
// bytecode is reproducible byte for byte.
const EXPECTED_SOLC = "0.8.28+commit.7893614a";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");
const dir = __dirname;
if (!solc.version().startsWith(EXPECTED_SOLC)) {
  console.error("need solc " + EXPECTED_SOLC + ", got " + solc.version());
  process.exit(1);
}
const settings = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] } },
};
const sources = fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort();
for (const file of sources) {
  const source = fs.readFileSync(path.join(dir, file), "utf8");
  const input = { language: "Solidity", sources: { [file]: { content: source } }, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if ((output.errors || []).some((e) => e.severity === "error")) process.exit(1);
  const sha = crypto.createHash("sha256").update(source).digest("hex");
  for (const [name, c] of Object.entries(output.contracts[file])) {
    if (!c.evm.bytecode.object) continue; // abstract contracts have no bytecode
    const out = {
      contractName: name,
      source: file,
      sourceSha256: sha,
      compiler: { name: "solc (npm solc, soljson)", version: solc.version() },
      settings,
      abi: c.abi,
      methodIdentifiers: c.evm.methodIdentifiers,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(dir, name + ".json"), JSON.stringify(out, null, 2) + "\n");
    console.log("wrote " + name + ".json from " + file);
  }
}
