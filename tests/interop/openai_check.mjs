// Drives `rvec serve` with the official `openai` npm client (pinned in package.json): models,
// completions (greedy text, logprobs, echo, n with a seed), chat (plain, streamed, logprobs),
// concurrent requests, a request after a stream on the same client, and OpenAI-shaped errors.
// Usage: node openai_check.mjs BASE_URL MODEL API_KEY EXPECT_JSON
// EXPECT_JSON: {"prompt", "prompt_ids", "completion", "chat", "chat_text", "max_tokens"} where
// completion / chat_text are `rvec generate`'s greedy outputs. Prints a JSON summary; exits 1 on
// the first failed check.
import OpenAI from "openai";
import { readFileSync } from "node:fs";

const [baseURL, model, apiKey, expectPath] = process.argv.slice(2);
const expect = JSON.parse(readFileSync(expectPath, "utf8"));
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
const summary = {};

function check(cond, what, detail) {
  if (!cond) {
    console.error(`FAIL: ${what}${detail === undefined ? "" : ": " + JSON.stringify(detail)}`);
    process.exit(1);
  }
}

async function main() {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  check(ids.includes(model), "models.list names the served model", ids);

  // Completions: greedy text equals rvec generate's.
  const greedy = { model, prompt: expect.prompt, max_tokens: expect.max_tokens, temperature: 0 };
  const c = await client.completions.create(greedy);
  check(c.object === "text_completion", "completion object", c.object);
  check(c.choices.length === 1, "one choice", c.choices.length);
  check(c.choices[0].text === expect.completion, "greedy completion equals rvec generate",
        { got: c.choices[0].text, want: expect.completion });
  check(c.usage.prompt_tokens === expect.prompt_ids.length, "usage.prompt_tokens", c.usage);
  check(c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, "usage sum");

  // Completions with logprobs: one entry per generated token, top-N alternatives.
  const lp = await client.completions.create({ ...greedy, logprobs: 3 });
  const L = lp.choices[0].logprobs;
  check(lp.choices[0].text === expect.completion, "logprobs do not change the text");
  check(L.tokens.length === lp.usage.completion_tokens, "one logprob per generated token",
        { tokens: L.tokens.length, usage: lp.usage });
  check(L.token_logprobs.every((x) => typeof x === "number" && x <= 0), "token logprobs <= 0");
  check(L.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 3),
        "top_logprobs has at most 3 entries");
  // Greedy: each sampled token is its position's most likely one.
  L.token_logprobs.forEach((x, i) => {
    const best = Math.max(...Object.values(L.top_logprobs[i]));
    check(Math.abs(best - x) < 1e-6, `greedy token ${i} is the top alternative`, { x, best });
  });

  // Echo (lm-eval's log-likelihood request): token ids in, prompt logprobs out, first null.
  const echo = await client.completions.create({
    model, prompt: expect.prompt_ids, max_tokens: 1, logprobs: 1, echo: true, temperature: 0,
  });
  const E = echo.choices[0].logprobs;
  check(E.token_logprobs.length === expect.prompt_ids.length + 1, "echo: prompt + 1 logprobs",
        E.token_logprobs.length);
  check(E.token_logprobs[0] === null, "echo: the first prompt token has no logprob");
  check(E.token_logprobs.slice(1).every((x) => typeof x === "number" && x <= 0), "echo values");
  check(echo.choices[0].text.startsWith(expect.prompt), "echo: the prompt text is echoed");
  summary.echo_tokens = E.token_logprobs.length;

  // n with a seed: reproducible, and the choices differ from each other.
  const sampled = { model, prompt: expect.prompt, max_tokens: expect.max_tokens, n: 3,
                    temperature: 1.0, seed: 42 };
  const s1 = await client.completions.create(sampled);
  const s2 = await client.completions.create(sampled);
  check(s1.choices.length === 3, "n = 3 choices", s1.choices.length);
  check(JSON.stringify(s1.choices.map((x) => x.text)) === JSON.stringify(s2.choices.map((x) => x.text)),
        "seeded sampling is reproducible");
  check(new Set(s1.choices.map((x) => x.text)).size > 1, "the n choices differ",
        s1.choices.map((x) => x.text));

  // Chat: the model's chat template; greedy text equals rvec generate --chat.
  const messages = [{ role: "user", content: expect.chat }];
  const chat = await client.chat.completions.create({
    model, messages, max_completion_tokens: expect.max_tokens, temperature: 0,
  });
  check(chat.object === "chat.completion", "chat object", chat.object);
  check(chat.choices[0].message.role === "assistant", "assistant role");
  check(chat.choices[0].message.content === expect.chat_text, "chat equals rvec generate --chat",
        { got: chat.choices[0].message.content, want: expect.chat_text });

  // Streamed chat: the deltas add up to the same text; then a plain request on the same client.
  for (let round = 0; round < 2; ++round) {
    const stream = await client.chat.completions.create({
      model, messages, max_tokens: expect.max_tokens, temperature: 0, stream: true,
    });
    let text = "";
    let finish = null;
    let chunks = 0;
    for await (const chunk of stream) {
      ++chunks;
      check(chunk.object === "chat.completion.chunk", "chunk object", chunk.object);
      const d = chunk.choices[0]?.delta?.content;
      if (d) text += d;
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    }
    check(text === expect.chat_text, "streamed chat equals the plain one", { text, round });
    check(finish === "stop" || finish === "length", "a finish_reason arrives", finish);
    const after = await client.completions.create(greedy);
    check(after.choices[0].text === expect.completion, "a request after a stream", round);
    summary.stream_chunks = chunks;
  }

  // Chat logprobs.
  const cl = await client.chat.completions.create({
    model, messages, max_tokens: expect.max_tokens, temperature: 0, logprobs: true,
    top_logprobs: 2,
  });
  const content = cl.choices[0].logprobs.content;
  check(content.length === cl.usage.completion_tokens, "chat logprobs: one per token",
        { n: content.length, usage: cl.usage });
  check(content.every((e) => typeof e.token === "string" && e.logprob <= 0 &&
                             Array.isArray(e.bytes) && e.top_logprobs.length === 2),
        "chat logprob entries", content[0]);

  // 16 concurrent clients share the engine: every answer is the greedy one.
  const t0 = Date.now();
  const many = await Promise.all(Array.from({ length: 16 }, () => client.completions.create(greedy)));
  summary.concurrent_ms = Date.now() - t0;
  check(many.every((r) => r.choices[0].text === expect.completion), "16 concurrent requests agree");

  // Errors are OpenAI-shaped: the client raises APIError with the status.
  const errors = {};
  const expectError = async (what, status, fn) => {
    try {
      await fn();
    } catch (e) {
      check(e instanceof OpenAI.APIError, `${what}: APIError`, String(e));
      check(e.status === status, `${what}: status ${status}`, e.status);
      check(typeof e.error?.message === "string" && e.error.message.length > 0,
            `${what}: an error message`, e.error);
      errors[what] = e.status;
      return;
    }
    check(false, `${what}: expected HTTP ${status}`);
  };
  await expectError("negative max_tokens", 400, () =>
    client.completions.create({ ...greedy, max_tokens: -1 }));
  await expectError("unknown model", 404, () =>
    client.completions.create({ ...greedy, model: "no-such-model" }));
  await expectError("bad role", 400, () =>
    client.chat.completions.create({ model, messages: [{ role: "wizard", content: "hi" }] }));
  await expectError("wrong key", 401, () =>
    new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }).models.list());
  summary.errors = errors;
  summary.ok = true;
  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(`FAIL: ${e?.stack ?? e}`);
  process.exit(1);
});
