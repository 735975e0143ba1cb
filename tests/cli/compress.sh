#!/usr/bin/env bash
# `rvec compress` end to end on a tiny synth family: every form writes its documented files and
# --json figures, `rvec apply` takes each form, --eval-model measures functional retention (a form
# that keeps v exactly has zero KL and full agreement), bad input fails cleanly, and
# `rvec transfer --compact` adds one row per form and a "What compression costs" section.
# Usage: compress.sh RVEC_BINARY SCRATCH_DIR
set -euo pipefail
rvec="$1"
scratch="$2"
data="${RVEC_TEST_DATA:-${RVEC_TEST_DATA_DEFAULT:?run through ctest, or set RVEC_TEST_DATA}}"
rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$rvec" synth --preset tiny-qwen2 --seed 3 --dtype bf16 -o base -q
"$rvec" synth --from base --seed 21 --perturb-std 0.004 -o sft -q
"$rvec" synth --from sft --seed 22 --perturb-std 0.004 -o grpo -q
"$rvec" synth --from base --seed 23 --perturb-std 0.004 -o instruct -q
"$rvec" extract --base sft --tuned grpo -o vec -q

"$rvec" compress vec -o lora --method lowrank --rank 8 --base-model my/instruct --json -q > lora.json
"$rvec" compress vec -o lora_full --method lowrank --energy 1 --keep-rest --dtype f32 --json -q \
  --eval-model instruct --prompts 3 --gen-tokens 8 --data-dir "$data" > full.json
"$rvec" compress vec -o sparse --method sparse --density 0.1 --json -q > sparse.json
"$rvec" compress vec -o sign --method sign --json -q > sign.json
python3 - <<'PY'
import json, os
lora = json.load(open("lora.json"))
assert lora["method"] == "lowrank" and lora["min_rank"] == 8, lora
assert 0 < lora["size_fraction_of_dense_bf16"] < 1, lora
assert 0 < lora["relative_error"] < 1 and 0 < lora["cosine"] <= 1, lora
assert lora["not_in_adapter"] and 0 < lora["not_in_adapter_share_of_norm2"] < 1, lora
kinds = {g["group"] for g in lora["by_kind"]}
assert {"q_proj", "down_proj", "embeddings", "norms"} <= kinds, kinds
assert any(g["group"] == "layer 0" for g in lora["by_layer"]), lora["by_layer"]
cfg = json.load(open("lora/adapter_config.json"))
assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["base_model_name_or_path"] == "my/instruct", cfg
assert os.path.exists("lora/adapter_model.safetensors") and os.path.exists("lora/compress.json")
# Full energy with the rest kept in f32: v survives to rounding, so the two models agree.
full = json.load(open("full.json"))
assert full["relative_error"] < 1e-5, full["relative_error"]
f = full["functional"]
assert f["prompts"] == 3 and f["positions"] > 0, f
assert f["mean_kl"] < 1e-6 and f["greedy_agreement"] == 1.0, f
for name in ("sparse", "sign"):
    j = json.load(open(name + ".json"))
    assert j["method"] == name and 0 < j["relative_error"] < 1.5, j
    assert os.path.exists(name + "/model.safetensors")
PY
[ $? -eq 0 ] || fail "compress --json figures"

# apply takes every form; the card names it.
for form in lora sparse sign; do
  "$rvec" apply --model instruct --vector "$form:0.5" -o "applied_$form" -q > /dev/null
  [ -f "applied_$form/model.safetensors" ] || fail "apply of $form wrote no model"
  grep -q "compact" "applied_$form/README.md" || fail "apply card of $form does not name the form"
done

# Bad input: a clear error, non-zero exit, nothing written.
set +e
"$rvec" compress vec -o bad --method lowrank -q 2> err1.txt
rc1=$?
"$rvec" compress vec -o bad --method sparse --density 0 -q 2> err2.txt
rc2=$?
"$rvec" compress sign -o bad --method sign -q 2> err3.txt
rc3=$?
"$rvec" compress vec -o lora --method sign -q 2> err4.txt
rc4=$?
set -e
[ $rc1 -ne 0 ] && grep -q -- "--rank" err1.txt || fail "lowrank without --rank/--energy: $(cat err1.txt)"
[ $rc2 -ne 0 ] && grep -q -- "--density" err2.txt || fail "density 0 accepted: $(cat err2.txt)"
[ $rc3 -ne 0 ] && grep -q "already a compact vector" err3.txt || fail "compact input: $(cat err3.txt)"
[ $rc4 -ne 0 ] || fail "an existing output was replaced without --force"
[ ! -e bad ] || fail "a failed compress left an output"
[ -f lora/adapter_config.json ] || fail "a refused compress damaged the existing output"

# transfer --compact: one row per form, compared with the exact v.
"$rvec" transfer --sft sft --grpo grpo --target instruct --alphas 1 --tasks gsm8k --limit 2 \
  --data-dir "$data" --controls none --compact lowrank:4,sign -o work -q > /dev/null
python3 - <<'PY'
import json
rep = json.load(open("work/report.json"))
ids = [r["variant"] for r in rep["rows"]]
assert ids == ["target", "alpha_1", "compact_lowrank4_alpha_1", "compact_sign_alpha_1"], ids
cmp = rep["compact"]
assert [c["variant"] for c in cmp] == ids[2:], cmp
for c in cmp:
    assert c["exact"] == "alpha_1" and 0 < c["size_fraction_of_dense_bf16"] < 1, c
    assert c["cells"] and all(cell is not None for cell in c["cells"]), c
assert any(l.startswith("rvec compress ") for l in rep["reproduce"]), rep["reproduce"]
PY
grep -q "## What compression costs" work/report.md || fail "report lacks the compression section"
# A rerun reuses the compressed forms.
"$rvec" transfer --sft sft --grpo grpo --target instruct --alphas 1 --tasks gsm8k --limit 2 \
  --data-dir "$data" --controls none --compact lowrank:4,sign -o work > rerun.txt 2>&1
grep -q "compact_lowrank4_alpha_1: up to date, reused" rerun.txt || fail "rerun redid a compact row: $(cat rerun.txt)"
echo "compress.sh: all checks passed"
