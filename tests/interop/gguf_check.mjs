// Reads an rvec GGUF export with the real peers and prints what they see as JSON, for
// tests/cli/gguf.sh to compare with rvec: @huggingface/gguf's metadata and tensor table, and
// llama.cpp's (node-llama-cpp's prebuilt binaries) tokenization and greedy continuations.
//
// Usage: node gguf_check.mjs meta FILE.gguf
//        node gguf_check.mjs llama FILE.gguf TEXTS.json PROMPTS.json MAX_TOKENS
//   TEXTS.json and PROMPTS.json hold JSON arrays of strings.
import fs from "node:fs";

const [mode, file, ...rest] = process.argv.slice(2);

// BigInt (the reader's 64-bit values) as plain numbers, so Python reads the JSON.
const plain = (_key, value) => (typeof value === "bigint" ? Number(value) : value);

async function meta() {
  const { gguf } = await import("@huggingface/gguf");
  const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
  const tensors = tensorInfos.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
  process.stdout.write(JSON.stringify({ metadata, tensors }, plain) + "\n");
}

async function llamaCpp() {
  const [textsPath, promptsPath, maxTokensArg] = rest;
  const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
  const prompts = JSON.parse(fs.readFileSync(promptsPath, "utf8"));
  const maxTokens = Number(maxTokensArg);
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  // build: "never": use the prebuilt @node-llama-cpp/linux-x64 binary or fail, never compile.
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  // specialTokens = true: added tokens in the text are matched, as Hugging Face tokenizers does.
  const tokens = texts.map((t) => Array.from(model.tokenize(t, true)));
  const generations = [];
  for (const prompt of prompts) {
    // An f32 KV cache and no flash attention, as `rvec generate --kv-dtype f32` computes: llama.cpp's
    // default f16 cache rounds K and V, which flips near-tied greedy choices.
    const context = await model.createContext({
      contextSize: 256,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    const sequence = context.getSequence();
    const ids = Array.from(model.tokenize(prompt, true));
    const out = [];
    let stopped = false;
    for await (const token of sequence.evaluate(ids, { temperature: 0 })) {
      if (model.isEogToken(token)) {
        stopped = true;
        break;
      }
      out.push(token);
      if (out.length >= maxTokens) break;
    }
    generations.push({ prompt_ids: ids, tokens: out, stopped });
    await context.dispose();
  }
  const info = {
    bos: model.tokens.bos,
    eos: model.tokens.eos,
    add_bos: model.tokens.shouldPrependBosToken,
    build: llama.buildType, // "prebuilt": the @node-llama-cpp/linux-x64 binary, nothing compiled
    gpu: llama.gpu,
  };
  process.stdout.write(JSON.stringify({ tokens, generations, info }) + "\n");
  await model.dispose();
  await llama.dispose();
}

if (mode === "meta") await meta();
else if (mode === "llama") await llamaCpp();
else {
  console.error("usage: gguf_check.mjs meta FILE | llama FILE TEXTS.json PROMPTS.json MAX_TOKENS");
  process.exit(2);
}
