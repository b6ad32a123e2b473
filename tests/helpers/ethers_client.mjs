// A partner written in JavaScript, as another team would write one with ethers v6 (docs/protocol.md).
//
// Reads one JSON request on stdin and writes one JSON answer on stdout:
//   {"domain": {...}, "types": {"Invitation": [...], ...},
//    "verify": ["<envelope as JSON text>", ...],             // parsed here with plain JSON.parse
//    "sign": [{"type": "Invitation", "message": {...}, "key": "0x.."}]}
// answers
//   {"recovered": ["0x..", ...], "signed": ["<envelope as JSON text>", ...]}
// A message that JSON.parse altered recovers to another address (or throws): the caller compares.
import { Wallet, verifyTypedData } from "ethers";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const { domain, types } = request;

const recovered = (request.verify ?? []).map((text) => {
  const envelope = JSON.parse(text);
  try {
    return verifyTypedData(domain, { [envelope.type]: types[envelope.type] }, envelope.message, envelope.signature);
  } catch (error) {
    return `error: ${error.shortMessage ?? error.message}`;
  }
});

const signed = [];
for (const { type, message, key } of request.sign ?? []) {
  const wallet = new Wallet(key);
  const signature = await wallet.signTypedData(domain, { [type]: types[type] }, message);
  signed.push(JSON.stringify({ type, message, signature }));
}

process.stdout.write(JSON.stringify({ recovered, signed }));
