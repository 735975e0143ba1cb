// Regenerates testdata/olmo2-tokenizer/vectors.jsonl with OpenAI's tiktoken (npm tiktoken@1.0.22,
// the Rust implementation compiled to WebAssembly) as the independent reference encoder.
//
// Usage: npm install tiktoken@1.0.22 in a scratch directory DIR, then NODE_PATH=DIR/node_modules
//   node scripts/olmo2_tokenizer_vectors.cjs DOLMA2_JSON QWEN_VECTORS_JSONL OUT_JSONL
// OLMo 2's tokenizer (allenai_dolma2.json) has cl100k_base's vocabulary for ids 0..100255 (the
// script checks this byte for byte first) and the same pre-tokenizer pattern, so tiktoken's
// encode_ordinary gives the ids Hugging Face tokenizers gives for text without added tokens.
// Inputs: the hand-written texts of the Qwen vectors plus a few that exercise cl100k's pattern.
"use strict";
const fs = require("fs");
const { get_encoding } = require("tiktoken");

const [dolmaPath, qwenVectorsPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: olmo2_tokenizer_vectors.cjs DOLMA2_JSON QWEN_VECTORS_JSONL OUT_JSONL");
  process.exit(2);
}
const enc = get_encoding("cl100k_base");
const tok = JSON.parse(fs.readFileSync(dolmaPath, "utf8"));

// GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to U+0100 onwards.
function byteLevelDecoder() {
  const printable = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map(printable.map((b) => [String.fromCodePoint(b), b]));
  let next = 256;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) map.set(String.fromCodePoint(next++), b);
  }
  return map;
}

const charToByte = byteLevelDecoder();
let ordinary = 0;
for (const [piece, id] of Object.entries(tok.model.vocab)) {
  if (id >= 100256) continue;
  ordinary++;
  const bytes = Buffer.from([...piece].map((ch) => charToByte.get(ch)));
  if (!bytes.equals(Buffer.from(enc.decode_single_token_bytes(id)))) {
    console.error(`id ${id} (${JSON.stringify(piece)}) differs from cl100k_base: stopping`);
    process.exit(1);
  }
}
console.error(`vocabulary: ${ordinary} ordinary ids identical to cl100k_base`);

const extra = [
  ["numbers", "1234567 and 12,345,678.90 or 3.14159265358979"],
  ["numbers", "Year 2024: 100000 tokens, 7B params, 1.5e-3 lr"],
  ["contractions", "I'M SURE YOU'LL SEE THEY'VE GONE; DON'T WORRY, IT'S FINE"],
  ["contractions", "she'd've known we're here, wouldn't she'll?"],
  ["whitespace", "a\n\n\nb\r\n\r\nc  \n  d\t\te   "],
  ["whitespace", "    indented code\n        deeper\n"],
  ["math", "Let $x = \\frac{1}{2}$, then $\\boxed{\\sqrt{2}}$ and 2^{10} = 1024."],
  ["math", "Please reason step by step, and put your final answer within \\boxed{}."],
  ["unicode", "naïve café – “quotes” … ½ ∑ ∫ → ≤ ≥"],
  ["unicode", "日本語のテキストと中文文本，还有한국어。"],
];
const inputs = fs.readFileSync(qwenVectorsPath, "utf8").trim().split("\n").map(JSON.parse)
  .map((row) => [row.category, row.text]).concat(extra);
const idToPiece = new Map(Object.entries(tok.model.vocab).map(([piece, id]) => [id, piece]));
const added = tok.added_tokens.map((t) => t.content);
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const rows = [];
let skipped = 0;
for (const [category, text] of inputs) {
  // tiktoken does not know OLMo 2's added tokens; texts holding one are left out.
  if (added.some((a) => text.includes(a))) {
    skipped++;
    continue;
  }
  const ids = Array.from(enc.encode_ordinary(text));
  rows.push(JSON.stringify({
    id: rows.length, category, text, ids,
    tokens: ids.map((id) => idToPiece.get(id)),
    decoded: decoder.decode(enc.decode(ids)),
  }));
}
fs.writeFileSync(outPath, rows.join("\n") + "\n");
console.error(`wrote ${rows.length} rows (${skipped} inputs with an added token left out)`);
