#!/usr/bin/env bash
# `rvec demo` offline, as a new user runs it: from the build tree with no RVEC_DATA and an empty
# home it reads the test sets vendored in testdata/, and its report has GSM8K, SciQ and BBH scores
# over real documents; an installed tree (`cmake --install`) finds its own copy under
# share/rvec/data from another directory. Also: a task without data is a clear error, and
# `rvec data pull` without a network says so in one line and writes nothing.
# Usage: demo.sh RVEC_BINARY SCRATCH_DIR   (RVEC_BUILD_DIR: the build tree, for cmake --install)
set -euo pipefail
rvec="$1"
scratch="$2"
rm -rf "$scratch"
mkdir -p "$scratch/home" "$scratch/elsewhere"
fail() { echo "FAIL: $*" >&2; exit 1; }
clean_env=(env -u RVEC_DATA -u RVEC_TEST_DATA -u XDG_DATA_HOME HOME="$scratch/home")

# 1. Build tree.
(cd "$scratch/elsewhere" && "${clean_env[@]}" "$rvec" demo --limit 2 -o "$scratch/demo" \
  >"$scratch/out.md" 2>"$scratch/err.txt") || { cat "$scratch/err.txt"; fail "demo exited non-zero"; }
grep -q "data from .*testdata" "$scratch/err.txt" || fail "demo did not read the vendored testdata/"
for col in "gsm8k exact_match" "sciq acc" "bbh_cot_fewshot exact_match"; do
  grep -q "$col" "$scratch/out.md" || fail "report lacks a '$col' column"
done
# Real documents: the first GSM8K and SciQ test questions are in the per-sample logs.
grep -rqs "Janet" "$scratch/demo" --include='samples_gsm8k.jsonl' ||
  fail "no GSM8K test document in the samples"
grep -rqs "Compounds that are capable of accepting electrons" "$scratch/demo" --include='samples_sciq.jsonl' ||
  fail "no SciQ test document in the samples"
grep -rqs "not ( True ) and ( True ) is" "$scratch/demo" --include='samples_bbh_cot_fewshot_boolean_expressions.jsonl' ||
  fail "no BBH test document in the samples"

# 2. Installed tree, run from another directory; it must use its own share/rvec/data.
if [ -n "${RVEC_BUILD_DIR:-}" ]; then
  cmake --install "$RVEC_BUILD_DIR" --prefix "$scratch/prefix" >/dev/null || fail "cmake --install"
  [ -x "$scratch/prefix/bin/rvec" ] || fail "no bin/rvec installed"
  [ -f "$scratch/prefix/share/rvec/data/gsm8k/SOURCE.md" ] || fail "no data installed"
  (cd "$scratch/elsewhere" && "${clean_env[@]}" "$scratch/prefix/bin/rvec" demo --limit 1 \
    --tasks gsm8k,sciq -o "$scratch/demo_installed" >"$scratch/out2.md" 2>"$scratch/err2.txt") ||
    { cat "$scratch/err2.txt"; fail "installed demo exited non-zero"; }
  grep -q "data from $scratch/prefix/share/rvec/data" "$scratch/err2.txt" ||
    { cat "$scratch/err2.txt"; fail "installed demo did not read share/rvec/data"; }
else
  fail "RVEC_BUILD_DIR not set (run through ctest)"
fi

# 3. A task whose data are missing stops the demo before any work, naming what to do.
mkdir -p "$scratch/partial/gsm8k"
set +e
"${clean_env[@]}" "$rvec" demo --limit 1 --data-dir "$scratch/partial" -o "$scratch/demo_partial" \
  >/dev/null 2>"$scratch/err3.txt"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "demo with missing data exited 0"
grep -q "rvec data pull sciq bbh_cot_fewshot" "$scratch/err3.txt" || { cat "$scratch/err3.txt"; fail "unclear missing-data error"; }
[ ! -e "$scratch/demo_partial/inputs" ] || fail "demo with missing data made models anyway"

# 4. `rvec data pull` with no reachable server (a closed local port stands in for no network):
# one line naming the URL and --data-dir, and nothing written.
set +e
"${clean_env[@]}" "$rvec" data pull gsm8k --mirror http://127.0.0.1:9 --timeout 5 \
  --data-dir "$scratch/pulled" >/dev/null 2>"$scratch/err4.txt"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "data pull without a server exited 0"
[ "$(grep -c . "$scratch/err4.txt")" -eq 1 ] || { cat "$scratch/err4.txt"; fail "pull error is not one line"; }
grep -q "http://127.0.0.1:9/gsm8k/test.jsonl" "$scratch/err4.txt" || { cat "$scratch/err4.txt"; fail "pull error does not name the URL"; }
grep -q -- "--data-dir" "$scratch/err4.txt" || fail "pull error does not name --data-dir"
if [ -d "$scratch/pulled" ] && [ -n "$(find "$scratch/pulled" -type f)" ]; then
  fail "pull left files behind: $(find "$scratch/pulled" -type f)"
fi
echo "demo.sh: all checks passed"
