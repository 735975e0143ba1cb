#!/usr/bin/env bash
# CLI test: `rvec merge` runs the Reasoning Vectors paper's mergekit config unchanged, takes side
# files from the first model, runs every supported method, and DARE is thread-invariant.
set -euo pipefail
rvec="$1"
dir="$2"
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$rvec" synth --preset tiny-qwen2 --seed 1 -o base -q > /dev/null
"$rvec" synth --from base --perturb-std 0.01 --seed 2 -o sft -q > /dev/null
"$rvec" synth --from sft --perturb-std 0.002 --seed 3 -o grpo -q > /dev/null
"$rvec" synth --from base --perturb-std 0.01 --seed 4 -o instruct -q > /dev/null

cat > paper.yaml <<'YAML'
models:
  - model: instruct
    parameters:
      weight: 1.0
  - model: grpo
    parameters:
      weight: 1.0
  - model: sft
    parameters:
      weight: -1.0
merge_method: linear
parameters:
  normalize: false
dtype: bfloat16
YAML
"$rvec" merge paper.yaml -o paper --json > paper.json
grep -q '"method": "linear"' paper.json || fail "paper config"
cmp paper/config.json instruct/config.json || fail "side files must come from the first model"
cmp paper/tokenizer_config.json instruct/tokenizer_config.json || fail "tokenizer donor"
grep -q "merge_method: linear" paper/README.md || fail "model card records the config"
head -c 4096 paper/model.safetensors | grep -q '"BF16"' || fail "bfloat16 output"

# Relative model paths resolve against the config's directory too.
mkdir -p sub
sed 's#model: #model: ../#' paper.yaml > sub/paper.yaml
"$rvec" merge sub/paper.yaml -o paper2 -q > /dev/null
cmp paper/model.safetensors paper2/model.safetensors || fail "config-relative paths"

for method in task_arithmetic ties dare_linear dare_ties breadcrumbs breadcrumbs_ties; do
  cat > "$method.yaml" <<YAML
merge_method: $method
base_model: base
models:
  - model: sft
    parameters:
      weight: [0.5, 1.0]
      density: 0.6
  - model: instruct
    parameters:
      weight:
        - filter: mlp
          value: 0.4
        - value: 0.8
      density: 0.7
parameters:
  lambda: 1.2
  gamma: 0.02
out_dtype: bfloat16
YAML
  "$rvec" merge "$method.yaml" -o "out_$method" --seed 5 -q --threads 1 > /dev/null ||
    fail "$method"
  "$rvec" merge "$method.yaml" -o "out2_$method" --seed 5 -q --threads 2 > /dev/null
  cmp "out_$method/model.safetensors" "out2_$method/model.safetensors" ||
    fail "$method: 1 and 2 threads differ"
  cmp "out_$method/config.json" base/config.json || fail "$method: donor is base_model"
done
"$rvec" merge dare_ties.yaml -o dare_seed6 --seed 6 -q > /dev/null
if cmp -s out_dare_ties/model.safetensors dare_seed6/model.safetensors; then
  fail "DARE seed has no effect"
fi

# Errors: unsupported method, bad YAML; nothing written.
printf 'merge_method: slerp\nmodels: [sft]\n' > slerp.yaml
set +e
"$rvec" merge slerp.yaml -o slerp -q 2> slerp.err
code=$?
printf 'merge_method: linear\nmodels:\n  - model: sft\n    weight: 1\n' > indent.yaml
"$rvec" merge indent.yaml -o indent -q 2> indent.err
code2=$?
set -e
[[ $code -ne 0 ]] || fail "slerp accepted"
grep -q "not supported" slerp.err || fail "slerp message: $(cat slerp.err)"
[[ $code2 -eq 2 ]] || fail "bad indentation: exit $code2"
grep -q "indentation" indent.err || fail "indentation hint: $(cat indent.err)"
[[ ! -e slerp && ! -e indent ]] || fail "output written on error"
echo "merge: OK"
