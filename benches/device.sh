#!/usr/bin/env bash
# benches/device.sh: proves gpu-cnn correct on a machine with an NVIDIA GPU, then measures it
# there beside the PyTorch replica, in one run of under 8 minutes. The GPU machine needs no Rust
# toolchain: everything is built here first.
#
#   bash benches/device.sh prepare   # here, in the repository root: builds into .dev/
#   bash benches/device.sh           # there, in the repository root (with .dev/ and assets/)
#
# prepare builds the release binary and the test binaries (`cargo test --release --no-run`),
# copies them into .dev/ with the path the tests were built in (they read their fixtures from
# there; the run links that path to the tree it runs in), and copies the PyTorch replica from
# ../shared/bench when it is there (.dev/ is build output, ignored by git). Where the GPU machine
# has no Vulkan loader, unpack
# Debian's libvulkan1 .deb files into .gl/ (the run installs them first).
#
# The run writes into $OUT (default /tmp/gpu-cnn-device): devices.txt, tests.log (every test
# binary with GPU_CNN_REQUIRE_GPU=1, so a missing adapter fails instead of skipping), tune.log
# and tuning.json (gpu-cnn tune at batch 32, 128 and 512; train and bench then use it),
# bench.jsonl (gpu-cnn bench at batch 32, 128 and 512, twice each), train.log and train/ (the
# full default 10-epoch run with its epoch times), torch.log (the replica, eager and CUDA
# graphs), and summary.txt. DEVICE_QUICK=1 shrinks every step (two test binaries, a few bench
# steps, 1 epoch of 1,000 images) to check the script itself on any adapter.
set -u

if [ "${1:-}" = prepare ]; then
  set -e
  cargo build --release
  mkdir -p .dev/tests
  cargo test --release --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | while read -r exe; do
      cp "$exe" ".dev/tests/$(basename "$exe" | sed 's/-[0-9a-f]*$//')"
    done
  cp target/release/gpu-cnn .dev/
  pwd > .dev/manifest_dir
  for f in torch_cnn.py idx.py; do
    [ -e "../shared/bench/$f" ] && cp "../shared/bench/$f" .dev/
  done
  ls .dev .dev/tests
  exit 0
fi

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
out="${OUT:-/tmp/gpu-cnn-device}"
mkdir -p "$out"
# A fresh record: the logs are appended to below, so an earlier run's would mix in.
rm -rf "$out/summary.txt" "$out/devices.txt" "$out/tests.log" "$out/bench.log" \
  "$out/bench.jsonl" "$out/train.log" "$out/train" "$out/torch.log" "$out/tune.log" \
  "$out/tuning.json"
quick="${DEVICE_QUICK:-0}"
start=$(date +%s)
say() { echo "== $* ($(( $(date +%s) - start )) s)" | tee -a "$out/summary.txt"; }

# The Vulkan loader, where the machine has none.
for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig 2>/dev/null
if ! ls /usr/share/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1 \
  && [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# The tests find their fixtures under the path they were built in.
manifest="$(cat .dev/manifest_dir)"
if [ "$manifest" != "$PWD" ] && [ ! -e "$manifest" ]; then
  mkdir -p "$(dirname "$manifest")" && ln -s "$PWD" "$manifest"
fi

nvidia-smi -L 2>&1 | tee "$out/devices.txt"
.dev/gpu-cnn devices 2>&1 | tee -a "$out/devices.txt"
say devices

# Correct first: every test binary on this GPU.
failed=0
tests=(.dev/tests/*)
[ "$quick" = 1 ] && tests=(.dev/tests/passes .dev/tests/shaders)
for t in "${tests[@]}"; do
  GPU_CNN_REQUIRE_GPU=1 "$t" \
    >>"$out/tests.log" 2>&1 || failed=$((failed + 1))
done
say "tests: $(grep -h '^test result' "$out/tests.log" | awk '{p+=$4; f+=$6} END {print p " passed, " f " failed"}'), $failed binaries failed"

# Then fast: the conv backward tilings tuned for each batch size (the cache kept in $OUT), then
# bench at three batch sizes, twice each (the per-pass table on the first).
export GPU_CNN_TUNING="$out/tuning.json"
for batch in 32 128 512; do
  .dev/gpu-cnn tune --batch "$batch" 2>&1 | tee -a "$out/tune.log"
done
say "tune: $(grep -c '^note: tuned' "$out/tune.log") shapes tuned"
steps=1000
[ "$quick" = 1 ] && steps=10
for batch in 32 128 512; do
  for run in 1 2; do
    reps=0
    [ "$run" = 1 ] && reps=20
    .dev/gpu-cnn bench --batch "$batch" --steps "$steps" --warmup 20 --pass-reps "$reps" --json \
      2>>"$out/bench.log" | tee -a "$out/bench.log" | tail -n 1 >>"$out/bench.jsonl"
  done
done
say "bench: $(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    print("batch %d %.0f images/s %d dispatches/step;" % (j["batch"], j["images_per_s"], j["dispatches_per_step"]), end=" ")
' "$out/bench.jsonl" 2>/dev/null)"

# The tutorial's whole run: 10 epochs of MNIST, evaluated.
limit=()
epochs=10
[ "$quick" = 1 ] && epochs=1 && limit=(--limit 1000)
.dev/gpu-cnn train --epochs "$epochs" "${limit[@]}" --out "$out/train" 2>&1 | tee "$out/train.log" | grep -E '^(Epoch|Test)'
say "train: $(grep -c '^Epoch' "$out/train.log") epochs, $(grep '^Test' "$out/train.log")"

# The PyTorch replica, eager and CUDA graphs, on the same GPU.
if [ -e .dev/torch_cnn.py ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  export PYTHONUNBUFFERED=1
  for mode in eager graphs; do
    python3 .dev/torch_cnn.py --device cuda --mode "$mode" --epochs "$([ "$quick" = 1 ] && echo 1 || echo 2)" \
      --data assets/mnist 2>&1 | tee -a "$out/torch.log"
  done
  say torch
else
  say "torch: skipped (no .dev/torch_cnn.py, or no CUDA PyTorch here)"
fi
cat "$out/summary.txt"
[ "$failed" = 0 ]
