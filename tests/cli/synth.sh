#!/usr/bin/env bash
# `rvec synth`: presets write complete model directories that `rvec inspect` reads back; same
# seed gives the same bytes for any --threads; --shards, --force, --from perturbation and errors.
# Usage: synth.sh RVEC_BINARY SCRATCH_DIR
set -u
rvec="$1"
scratch="$2"
rm -rf "$scratch"
mkdir -p "$scratch"
fail=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what="$1"
  shift
  if ! "$@" >"$scratch/out" 2>"$scratch/err"; then
    echo "FAIL $what: exit $?"
    cat "$scratch/err"
    fail=1
    return 1
  fi
}
expect_error() {  # expect_error DESCRIPTION EXIT_CODE MESSAGE_PART COMMAND...
  local what="$1" code="$2" part="$3"
  shift 3
  "$@" >"$scratch/out" 2>"$scratch/err"
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL $what: exit $rc, expected $code"
    cat "$scratch/err"
    fail=1
  elif ! grep -q "^rvec: error: .*$part" "$scratch/err"; then
    echo "FAIL $what: stderr lacks '$part'"
    cat "$scratch/err"
    fail=1
  fi
}

# Every tiny preset, read back by inspect with the right architecture and parameter count.
for preset in tiny-qwen2 tiny-llama tiny-qwen3 tiny-olmo2; do
  check "synth $preset" "$rvec" synth --preset "$preset" --seed 1 -o "$scratch/$preset" --quiet \
    --json || continue
  params=$(sed -n 's/^  "parameters": \([0-9]*\),$/\1/p' "$scratch/out")
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json \
    model.safetensors; do
    [ -s "$scratch/$preset/$f" ] || { echo "FAIL $preset: no $f"; fail=1; }
  done
  check "inspect $preset" "$rvec" inspect "$scratch/$preset" --json || continue
  grep -q "\"parameters\": $params," "$scratch/out" ||
    { echo "FAIL $preset: inspect disagrees on parameters ($params)"; cat "$scratch/out"; fail=1; }
done
grep -q '"architectures": \[\s*$' "$scratch/tiny-llama/config.json" &&
  grep -q '"LlamaForCausalLM"' "$scratch/tiny-llama/config.json" ||
  { echo "FAIL tiny-llama config.json lacks LlamaForCausalLM"; fail=1; }
grep -q '"Olmo2ForCausalLM"' "$scratch/tiny-olmo2/config.json" ||
  { echo "FAIL tiny-olmo2 config.json lacks Olmo2ForCausalLM"; fail=1; }
grep -q '"head_dim": 32' "$scratch/tiny-qwen3/config.json" ||
  { echo "FAIL tiny-qwen3 config.json lacks head_dim 32"; fail=1; }
grep -q '<|im_start|>' "$scratch/tiny-qwen2/tokenizer_config.json" ||
  { echo "FAIL tokenizer_config.json lacks a ChatML template"; fail=1; }

# Same seed, different thread counts: identical bytes. Different seed: different weights.
check "synth threads=1" "$rvec" synth --preset tiny-qwen2 --seed 1 --threads 1 -o "$scratch/t1" -q
check "synth threads=2" "$rvec" synth --preset tiny-qwen2 --seed 1 --threads 2 -o "$scratch/t2" -q
for f in model.safetensors config.json tokenizer.json; do
  cmp -s "$scratch/t1/$f" "$scratch/t2/$f" || { echo "FAIL $f differs across threads"; fail=1; }
  cmp -s "$scratch/t1/$f" "$scratch/tiny-qwen2/$f" ||
    { echo "FAIL $f differs from the first run"; fail=1; }
done
check "synth seed 2" "$rvec" synth --preset tiny-qwen2 --seed 2 -o "$scratch/s2" -q
cmp -s "$scratch/t1/model.safetensors" "$scratch/s2/model.safetensors" &&
  { echo "FAIL seeds 1 and 2 gave the same weights"; fail=1; }

# Sharding into exactly 3 files with an index, in f16.
check "synth --shards 3" "$rvec" synth --preset tiny-llama --dtype f16 --shards 3 -o "$scratch/sh" -q
ls "$scratch/sh"/model-0000{1,2,3}-of-00003.safetensors >/dev/null 2>&1 ||
  { echo "FAIL --shards 3 did not write 3 shards"; ls "$scratch/sh"; fail=1; }
[ -f "$scratch/sh/model.safetensors.index.json" ] || { echo "FAIL no index"; fail=1; }
check "inspect sharded" "$rvec" inspect "$scratch/sh" --json &&
  { grep -q '"F16"' "$scratch/out" || { echo "FAIL sharded model is not F16"; fail=1; }; }

# Existing output: refused (exit 3) and untouched without --force, replaced with it.
before=$(cksum <"$scratch/t1/model.safetensors")
expect_error "overwrite without --force" 3 "exists" \
  "$rvec" synth --preset tiny-qwen2 --seed 5 -o "$scratch/t1" -q
[ "$(cksum <"$scratch/t1/model.safetensors")" = "$before" ] ||
  { echo "FAIL refused overwrite still changed the output"; fail=1; }
check "overwrite with --force" "$rvec" synth --preset tiny-qwen2 --seed 5 -o "$scratch/t1" -q --force
[ "$(cksum <"$scratch/t1/model.safetensors")" != "$before" ] ||
  { echo "FAIL --force did not replace the output"; fail=1; }

# Perturbed copy: same tensors and side files, different weights; --only limits what changes.
check "perturb" "$rvec" synth --from "$scratch/tiny-qwen2" --perturb-std 0.01 --seed 3 \
  --only mlp. -o "$scratch/pert" -q --json
grep -q '"tensors_perturbed": 6' "$scratch/out" ||
  { echo "FAIL --only mlp. should perturb 6 tensors"; cat "$scratch/out"; fail=1; }
cmp -s "$scratch/tiny-qwen2/tokenizer.json" "$scratch/pert/tokenizer.json" ||
  { echo "FAIL perturbed copy lost tokenizer.json"; fail=1; }
cmp -s "$scratch/tiny-qwen2/model.safetensors" "$scratch/pert/model.safetensors" &&
  { echo "FAIL perturbed weights equal the base"; fail=1; }

# Errors: exit 2 with a message naming the problem; nothing written.
expect_error "unknown preset" 2 "unknown preset" "$rvec" synth --preset nope -o "$scratch/x" -q
expect_error "bad dtype" 2 "dtype" "$rvec" synth --preset tiny-qwen2 --dtype i8 -o "$scratch/x" -q
expect_error "no output" 2 "output" "$rvec" synth --preset tiny-qwen2 -q
expect_error "too many shards" 2 "shards" \
  "$rvec" synth --preset tiny-qwen2 --shards 999 -o "$scratch/x" -q
expect_error "missing tokenizer dir" 1 "tokenizer" \
  "$rvec" synth --preset tiny-qwen2 --tokenizer "$scratch/none" -o "$scratch/x" -q
expect_error "perturb without std" 2 "perturb-std" "$rvec" synth --from "$scratch/t2" -o "$scratch/x"
[ -e "$scratch/x" ] && { echo "FAIL a failed run left $scratch/x behind"; fail=1; }

check "--list-presets" "$rvec" synth --list-presets &&
  { grep -q "qwen2.5-1.5b.*1543714304" "$scratch/out" ||
    { echo "FAIL --list-presets lacks qwen2.5-1.5b with 1543714304 parameters"; cat "$scratch/out";
      fail=1; }; }
check "--help" "$rvec" synth --help &&
  { grep -q "Examples:" "$scratch/out" || { echo "FAIL --help has no example"; fail=1; }; }

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "synth: presets, determinism, sharding, --force, perturbation and errors OK"
