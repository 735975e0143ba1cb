#!/usr/bin/env bash
# Rebuilds the data files of testdata/ from the full upstream copies (the layout of `rvec data pull`
# plus the tokenizer reference data): checks each upstream SHA-256, copies whole files, gzips those
# of 64 KiB or more (gzip -9n: byte-reproducible), and writes testdata/SHA256SUMS with the SHA-256
# of every file's *uncompressed* contents, which tests/testdata_test.cc checks. SOURCE.md files and
# licence texts are kept as they are.
#
# Usage: scripts/vendor_testdata.sh [FULL_DATA_DIR] [OUT_DIR]   (defaults: ../shared/data testdata)
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-../shared/data}"
out="${2:-testdata}"
[ -d "$src" ] || { echo "vendor_testdata: no such directory: $src" >&2; exit 1; }

# Upstream files and their pinned SHA-256 (from each folder's SOURCE.md / rvec's data manifest).
# What is left out, and why, is said in the folder's SOURCE.md.
pinned() {
  cat <<'EOF'
3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14  gsm8k/test.jsonl
17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465  gsm8k/train.jsonl
7340983c427dc2ffd3dccf1adb758b6cdc9455bd22bf3db0ddf6ffcae0452006  sciq/test.json
6f2f301537b1f94b025af00467a9c3412bc249a40b4075a6d31b1c21ad7359e3  sciq/license.txt
67c00d15da00e2ba4045930f81b051bbfab38c956dad0bb3d0c697a47efb69ec  sciq/readme.txt
b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef  humaneval/HumanEval.jsonl.gz
6653b4b941956da12ba0af2eae660800db13a901123553b163b77be2d20eb7d5  gsm_plus/gsmplus_testmini.jsonl
f7d6701619f824f4fedd0a914b1cfbc0fd31f61617887aa7fe318d018dda3f29  gsm_symbolic/GSM_p2.jsonl
35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132  math/math500/test.jsonl
af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac  math/aime24/test.jsonl
43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4  math/amc23/test.jsonl
0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2  math/minerva_math/test.jsonl
bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416  math/olympiadbench/test.jsonl
EOF
  # The tokenizer folder pins its own files.
  sed 's|  |  qwen-tokenizer/|' "$src/qwen-tokenizer/SHA256SUMS"
}

# BBH: every task file and CoT prompt, pinned as a whole by the hash of their concatenation.
bbh_sha=$(cat "$src"/bbh/bbh/*.json | sha256sum | cut -d' ' -f1)
[ "$bbh_sha" = 458d39a058ce0bb513cfaeb5ed37f4c8a6838206c4807d1b94ee66da172dc46b ] ||
  { echo "vendor_testdata: $src/bbh/bbh/*.json: concatenated SHA-256 $bbh_sha is not the pinned one" >&2; exit 1; }

files=()
while read -r sha path; do
  got=$(sha256sum "$src/$path" | cut -d' ' -f1)
  [ "$got" = "$sha" ] || { echo "vendor_testdata: $src/$path: SHA-256 $got, pinned $sha" >&2; exit 1; }
  files+=("$path")
done < <(pinned)
for f in "$src"/bbh/bbh/*.json "$src"/bbh/cot-prompts/*.txt; do files+=("${f#"$src"/}"); done
# Licence texts that came with the data, verbatim.
files+=(gsm_symbolic/LICENSE-CC-BY-NC-ND-4.0.md math/LICENSE-prm800k-MIT.txt
  math/LICENSE-math-evaluation-harness-MIT.txt)

sums=$(mktemp)
trap 'rm -f "$sums"' EXIT
for path in "${files[@]}"; do
  mkdir -p "$out/$(dirname "$path")"
  rm -f "$out/$path" "$out/$path.gz"
  size=$(stat -c %s "$src/$path")
  if [[ "$path" != *.gz && "$size" -ge 65536 ]]; then
    gzip -9 -n -c "$src/$path" >"$out/$path.gz"
  else
    cp "$src/$path" "$out/$path"
  fi
  # For a file kept compressed upstream (HumanEval), the hash is of the file as published.
  echo "$(sha256sum "$src/$path" | cut -d' ' -f1)  $path" >>"$sums"
done
# The Apache-2.0 text the Qwen tokenizer and OlympiadBench are released under (Debian's copy).
for dir in qwen-tokenizer math; do
  cp /usr/share/common-licenses/Apache-2.0 "$out/$dir/LICENSE-Apache-2.0.txt"
  echo "$(sha256sum "$out/$dir/LICENSE-Apache-2.0.txt" | cut -d' ' -f1)  $dir/LICENSE-Apache-2.0.txt" >>"$sums"
done
sort -k2 "$sums" >"$out/SHA256SUMS"
echo "vendor_testdata: ${#files[@]} files into $out ($(du -sh "$out" | cut -f1))"
