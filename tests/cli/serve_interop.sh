#!/usr/bin/env bash
# CLI test of `rvec serve` against the official `openai` npm client (tests/interop, pinned): on a
# synth model with the real Qwen2.5 tokenizer and chat template, the client's greedy completions
# and chats (plain and streamed) equal `rvec generate`'s, logprobs/echo/n/errors have the shapes
# the client parses, and 16 concurrent requests agree. Without the npm peers the test fails.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() {
  echo "FAIL: $*" >&2
  [ -f server.err ] && tail -n 20 server.err >&2
  exit 1
}
src="${RVEC_SOURCE_DIR:?RVEC_SOURCE_DIR is not set (ctest sets it)}"
interop="$src/tests/interop"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:-$src/testdata}}/qwen-tokenizer"
command -v node > /dev/null || fail "node is not installed (scripts/deps.sh installs nodejs)"
[ -f "$interop/node_modules/openai/package.json" ] ||
  fail "$interop/node_modules/openai is missing: run scripts/test.sh, or (cd tests/interop &&" \
    "npm ci --omit=optional --ignore-scripts); it needs the npm registry"

# Perturbed so that greedy continuations wander over the vocabulary.
"$RVEC" synth --preset tiny-qwen2 --seed 7 --tokenizer "$data/qwen2.5" -o q -q > /dev/null
"$RVEC" synth --from q --perturb-std 0.5 --seed 3 -o model -q > /dev/null

# shellcheck source=lib/serve.bash
source "$src/tests/cli/lib/serve.bash"
start_server "$RVEC" model --api-key test-key --served-model-name tiny

prompt="Once upon a time"
chat="What is the capital of France?"
max=12
"$RVEC" generate model --prompt "$prompt" --max-tokens $max --json -q > gen.json
"$RVEC" generate model --chat "$chat" --max-tokens $max --json -q > chat.json
"$RVEC" tokenize model "$prompt" --json > ids.json
python3 - "$prompt" "$chat" "$max" > expect.json <<'PY'
import json, sys
prompt, chat, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
ids = json.load(open("ids.json"))["ids"]
gen, ch = json.load(open("gen.json")), json.load(open("chat.json"))
print(json.dumps({"prompt": prompt, "prompt_ids": ids, "completion": gen["text"], "chat": chat,
                  "chat_text": ch["text"], "max_tokens": max_tokens}))
PY
node "$interop/openai_check.mjs" "$url" tiny test-key expect.json > summary.json ||
  fail "the openai client's checks failed"
cat summary.json
stop_server
echo "serve_interop: ok"
