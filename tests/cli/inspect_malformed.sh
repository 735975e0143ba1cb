#!/usr/bin/env bash
# `rvec inspect` on every malformed-corpus case: non-zero exit, an "rvec: error:" line on stderr
# naming the case and the problem, nothing on stdout; and success on a valid file.
# Usage: inspect_malformed.sh RVEC_BINARY SCRATCH_DIR
set -u
rvec="$1"
scratch="$2"
src="${RVEC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
corpus="$src/tests/data/malformed"
mkdir -p "$scratch"
fail=0
count=0
while IFS=$'\t' read -r name expect; do
  case "$name" in ''|'#'*) continue ;; esac
  count=$((count + 1))
  "$rvec" inspect "$corpus/$name" >"$scratch/out" 2>"$scratch/err"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "FAIL $name: exit 0, expected an error"; fail=1; continue
  fi
  if [ "$rc" -ge 128 ]; then
    echo "FAIL $name: killed by signal (exit $rc)"; cat "$scratch/err"; fail=1; continue
  fi
  if ! grep -q "^rvec: error: " "$scratch/err"; then
    echo "FAIL $name: no 'rvec: error:' line on stderr"; cat "$scratch/err"; fail=1; continue
  fi
  if ! grep -qF -- "$name" "$scratch/err"; then
    echo "FAIL $name: message does not name the file"; cat "$scratch/err"; fail=1; continue
  fi
  if ! grep -qF -- "$expect" "$scratch/err"; then
    echo "FAIL $name: message lacks '$expect'"; cat "$scratch/err"; fail=1; continue
  fi
  if [ -s "$scratch/out" ]; then
    echo "FAIL $name: printed to stdout despite failing"; fail=1; continue
  fi
done <"$corpus/EXPECTED.tsv"
if [ "$count" -lt 25 ]; then
  echo "FAIL: only $count malformed cases in $corpus/EXPECTED.tsv"; fail=1
fi

# The same command succeeds on a valid file, in both output modes.
valid="$src/tests/data/valid/tiny.safetensors"
if ! "$rvec" inspect "$valid" --tensors >"$scratch/out" 2>"$scratch/err"; then
  echo "FAIL valid file rejected:"; cat "$scratch/err"; fail=1
elif ! grep -q "F8_E4M3" "$scratch/out"; then
  echo "FAIL --tensors output lacks the F8_E4M3 tensor"; cat "$scratch/out"; fail=1
fi
if ! "$rvec" inspect "$valid" --json >"$scratch/out" 2>"$scratch/err"; then
  echo "FAIL --json on a valid file:"; cat "$scratch/err"; fail=1
elif ! grep -q '"tensor_count": 12' "$scratch/out"; then
  echo "FAIL --json lacks tensor_count 12"; cat "$scratch/out"; fail=1
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "inspect_malformed: $count malformed cases rejected cleanly, valid file accepted"
