#!/usr/bin/env bash
# Benchmark of `rvec apply --base --tuned` on three bf16 synthetic models (default qwen2.5-0.5b) against the
# machine's copy limit measured in the same run: reading the three inputs (cat > /dev/null) plus
# writing one output-sized file. Also reports rvec's peak anonymous memory (RssAnon, sampled) and
# peak RSS (VmHWM, which includes mapped input pages).
#
# Usage: scripts/bench_apply.sh [RVEC_BINARY] [WORK_DIR] [REPEATS] [PRESET]
# The three inputs are generated once with `rvec synth` (seeds 1, 2, 3) and reused.
set -euo pipefail
rvec="${1:-build/cli/rvec}"
work="${2:-/tmp/rvec_bench}"
repeats="${3:-3}"
preset="${4:-qwen2.5-0.5b}"
mkdir -p "$work"
for s in 1 2 3; do
  if [[ ! -f "$work/m$s/model.safetensors" ]]; then
    "$rvec" synth --preset "$preset" --seed "$s" -o "$work/m$s" -q
  fi
done
inputs=("$work/m1/model.safetensors" "$work/m2/model.safetensors" "$work/m3/model.safetensors")
out_bytes=$(stat -c %s "$work/m3/model.safetensors")

now() { date +%s.%N; }

# cat the inputs, then write an output-sized file. rvec fsyncs its output before renaming it
# into place (a crash never leaves a half-written model), so the durable baseline fsyncs too
# (dd conv=fsync); the plain one leaves the data in the page cache.
baseline() {
  local sync_flag="$1"
  rm -f "$work/copy.bin"
  local t0 t1
  t0=$(now)
  cat "${inputs[@]}" > /dev/null
  dd if=/dev/zero of="$work/copy.bin" bs=1M count=$((out_bytes / 1048576)) status=none \
    ${sync_flag:+conv=fsync}
  t1=$(now)
  rm -f "$work/copy.bin"
  echo "$t1 - $t0" | bc -l
}

# Runs rvec apply while sampling /proc/PID/status; prints "seconds peak_anon_kB peak_rss_kB".
run_rvec() {
  rm -rf "$work/out"
  local t0 t1 pid anon=0 hwm=0 a h
  t0=$(now)
  "$rvec" apply --model "$work/m3" --base "$work/m1" --tuned "$work/m2" --alpha 0.5 \
    -o "$work/out" -q > /dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -r /proc/$pid/status ]]; then
      a=$(awk '/^RssAnon:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
      h=$(awk '/^VmHWM:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
      [[ -n "$a" && "$a" -gt "$anon" ]] && anon=$a
      [[ -n "$h" && "$h" -gt "$hwm" ]] && hwm=$h
    fi
    sleep 0.02
  done
  wait "$pid"
  t1=$(now)
  sync -f "$work/out/model.safetensors" 2>/dev/null || true
  echo "$(echo "$t1 - $t0" | bc -l) $anon $hwm"
}

# Warm the page cache so both sides read from memory.
cat "${inputs[@]}" > /dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM (shared, noisy)"
echo "inputs: 3 x $(numfmt --to=iec "$out_bytes") bf16 ($preset synth)"
best_base=1000000000
best_sync=1000000000
best_rvec=1000000000
peak_anon=0
peak_rss=0
for ((i = 1; i <= repeats; i++)); do
  b=$(baseline "")
  bs=$(baseline fsync)
  read -r r anon hwm < <(run_rvec)
  printf 'run %d: cat+write %.2f s, cat+write+fsync %.2f s, rvec apply (fsyncs) %.2f s; ratios %.2f / %.2f; peak RssAnon %d MiB, VmHWM %d MiB\n' \
    "$i" "$b" "$bs" "$r" "$(echo "$r / $b" | bc -l)" "$(echo "$r / $bs" | bc -l)" \
    $((anon / 1024)) $((hwm / 1024))
  (($(echo "$b < $best_base" | bc -l))) && best_base=$b
  (($(echo "$bs < $best_sync" | bc -l))) && best_sync=$bs
  (($(echo "$r < $best_rvec" | bc -l))) && best_rvec=$r
  ((anon > peak_anon)) && peak_anon=$anon
  ((hwm > peak_rss)) && peak_rss=$hwm
done
printf 'best: cat+write %.2f s, cat+write+fsync %.2f s, rvec apply %.2f s; ratio %.2f vs plain, %.2f vs durable (target <= 1.15); peak RssAnon %d MiB (target < 512), peak VmHWM %d MiB\n' \
  "$best_base" "$best_sync" "$best_rvec" "$(echo "$best_rvec / $best_base" | bc -l)" \
  "$(echo "$best_rvec / $best_sync" | bc -l)" $((peak_anon / 1024)) $((peak_rss / 1024))
rm -rf "$work/out"
