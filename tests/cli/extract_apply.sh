#!/usr/bin/env bash
# CLI test: extract/apply/stats/similarity/control on tiny synthetic models, the bit-exact
# identities, error exit codes, and that a killed apply leaves no output directory.
set -euo pipefail
rvec="$1"
dir="$2"
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$rvec" synth --preset tiny-llama --seed 1 -o base -q > /dev/null
"$rvec" synth --from base --perturb-std 0.01 --seed 2 -o sft -q > /dev/null
"$rvec" synth --from sft --perturb-std 0.002 --seed 3 -o grpo -q > /dev/null
"$rvec" synth --from base --perturb-std 0.01 --seed 4 -o instruct -q > /dev/null

# extract: F32 by default, provenance, no config.json.
"$rvec" extract --base sft --tuned grpo -o vec -q > extract.txt
[[ -f vec/model.safetensors && -f vec/README.md ]] || fail "extract output files"
[[ ! -e vec/config.json ]] || fail "a vector must not carry config.json"
head -c 4096 vec/model.safetensors | grep -q '"rvec.tuned.header_sha256"' || fail "provenance"
head -c 4096 vec/model.safetensors | grep -q '"F32"' || fail "default dtype F32"
"$rvec" extract --base sft --tuned grpo -o vec16 --dtype bf16 --json > extract.json
grep -q '"narrowing_changed_elements"' extract.json || fail "narrowing report"

# apply: SFT + (GRPO − SFT) is GRPO bit for bit; α = 0 is the target bit for bit.
"$rvec" apply --model sft --vector vec -o back -q > /dev/null
cmp back/model.safetensors grpo/model.safetensors || fail "SFT + v != GRPO"
"$rvec" apply --model instruct --base sft --tuned grpo --alpha 0 -o zero -q > /dev/null
cmp zero/model.safetensors instruct/model.safetensors || fail "alpha 0 != target"
cmp zero/config.json instruct/config.json || fail "config must come from the target"
cmp zero/tokenizer_config.json instruct/tokenizer_config.json || fail "tokenizer from target"
grep -q "θ_target" zero/README.md || fail "model card"
# The direct form equals the stored vector.
"$rvec" apply --model instruct --base sft --tuned grpo --alpha 0.5 -o direct -q > /dev/null
"$rvec" apply --model instruct --vector vec:0.5 -o stored -q > /dev/null
cmp direct/model.safetensors stored/model.safetensors || fail "direct != stored vector"
# Thread count does not change bytes.
"$rvec" apply --model instruct --vector vec:0.3 --vector vec16:-0.2 --alpha-layers 0,1 \
  --alpha-for 'mlp=0.7' -o t1 -q --threads 1 > /dev/null
"$rvec" apply --model instruct --vector vec:0.3 --vector vec16:-0.2 --alpha-layers 0,1 \
  --alpha-for 'mlp=0.7' -o t2 -q --threads 2 > /dev/null
cmp t1/model.safetensors t2/model.safetensors || fail "threads changed the output"

# Errors: exit codes and no output.
"$rvec" synth --preset tiny-qwen2 --seed 1 -o qwen -q > /dev/null
set +e
"$rvec" apply --model qwen --vector vec -o bad -q 2> bad.err
code=$?
"$rvec" apply --model instruct --vector vec -o stored -q 2> exists.err
code_exists=$?
"$rvec" apply --model instruct --vector vec --alpha-for 'mlp' -o bad2 -q 2> bad2.err
code_arg=$?
set -e
[[ $code -eq 1 ]] || fail "incompatible models: exit $code"
grep -q "not compatible" bad.err || fail "incompatible message: $(cat bad.err)"
[[ ! -e bad ]] || fail "output written despite incompatibility"
[[ $code_exists -eq 3 ]] || fail "existing output: exit $code_exists"
[[ $code_arg -eq 2 ]] || fail "bad --alpha-for: exit $code_arg"
[[ ! -e bad2 ]] || fail "output written despite a bad flag"

# stats / similarity / control.
"$rvec" stats vec --model sft --svg vec.svg --json > stats.json
grep -q '"relative_norm"' stats.json || fail "stats json"
grep -q '<polyline' vec.svg || fail "svg chart"
"$rvec" similarity vec vec --json > self.json
grep -A1 '"overall"' self.json | grep -Eq '"cosine": (1\.0|0\.99999)' || fail "self cosine"
# The header carries a creation stamp; SOURCE_DATE_EPOCH pins it so whole files compare.
SOURCE_DATE_EPOCH=1700000000 "$rvec" control --like vec --seed 7 -o ctl --json > ctl.json
grep -q '"max_relative_norm_error"' ctl.json || fail "control report"
SOURCE_DATE_EPOCH=1700000000 "$rvec" control --like vec --seed 7 -o ctl2 --threads 1 -q > /dev/null
head -c 4096 ctl/model.safetensors | grep -q '"rvec.created":"2023-11-14T22:13:20Z"' ||
  fail "SOURCE_DATE_EPOCH not honoured"
cmp ctl/model.safetensors ctl2/model.safetensors || fail "control not thread-invariant"
"$rvec" control --like vec --seed 7 --shuffle -o shuf -q > /dev/null
"$rvec" control --like vec --seed 7 --match rows -o rows -q > /dev/null
head -c 4096 ctl/model.safetensors | grep -q '"control_vector"' || fail "control provenance"

# A killed apply leaves no output directory. The input is large enough to take a while.
python3 - <<'PY'
import json, struct
n = 48 * 1024 * 1024  # f32 elements: 192 MiB per file
for name in ("big_target.safetensors", "big_vec.safetensors"):
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}})
    header += " " * (-len(header) % 8)
    with open(name, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header.encode())
        f.truncate(8 + len(header) + 4 * n)
PY
killed_mid_run=0
for sig in KILL TERM; do
  for delay in 0.3 0.1 0.02; do
    rm -rf killed
    "$rvec" apply --model big_target.safetensors --vector big_vec.safetensors:0.5 -o killed \
      -q --threads 1 > /dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -s "$sig" "$pid" 2> /dev/null; then
      status=0
      wait "$pid" 2> /dev/null || status=$?
      # kill also "succeeds" on a process that has exited but is not reaped yet: a zero status
      # means the run had finished before the signal, so try a shorter delay.
      if [[ $status -eq 0 ]]; then
        continue
      fi
      [[ ! -e killed ]] || fail "a run killed by SIG$sig left an output directory"
      # Only a hidden temporary sibling may remain (a killed process cannot clean up); the
      # next run removes it.
      killed_mid_run=$((killed_mid_run + 1))
      break
    fi
    wait "$pid" 2> /dev/null || true
  done
done
[[ $killed_mid_run -ge 1 ]] || fail "apply finished before it could be killed; enlarge the input"
# A run killed once its temporary output exists leaves that temporary behind...
rm -rf killed .killed.rvec-tmp-*
"$rvec" apply --model big_target.safetensors --vector big_vec.safetensors:0.5 -o killed \
  -q --threads 1 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 500); do
  if compgen -G ".killed.rvec-tmp-*" > /dev/null; then break; fi
  sleep 0.01
done
kill -s KILL "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
left_behind=$( (compgen -G ".killed.rvec-tmp-*" || true) | wc -l)
rm -rf killed  # only if the kill came too late
# ...and finishing normally produces the output and removes it, saying so.
"$rvec" apply --model big_target.safetensors --vector big_vec.safetensors:0.5 -o killed -q \
  > /dev/null 2> rerun_err.txt
[[ -f killed/model.safetensors ]] || fail "uninterrupted run"
[[ $( (compgen -G ".killed.rvec-tmp-*" || true) | wc -l) -eq 0 ]] || fail "stale temporaries remain"
[[ $left_behind -gt 0 ]] || fail "the killed run left no temporary to clean up (finished too fast?)"
if [[ $left_behind -gt 0 ]]; then
  grep -q "rvec: note: removed .*no longer runs" rerun_err.txt || fail "the cleanup was not reported"
fi
rm -f big_target.safetensors big_vec.safetensors
rm -rf killed
echo "extract_apply: OK"
