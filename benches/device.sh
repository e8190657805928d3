#!/usr/bin/env bash
# Runs gpu-cnn bench and the PyTorch replica on an NVIDIA machine, same machine, same run.
# For a machine with no Rust toolchain, prepare on the build machine, in the repository root:
#   echo '/.gl/' >> .git/info/exclude; echo '/.dev/' >> .git/info/exclude
#   (Vulkan loader debs into .gl/, where the machine lacks libvulkan)
#   cargo build --release && mkdir -p .dev && cp target/release/gpu-cnn .dev/
#   cp ../shared/bench/torch_cnn.py ../shared/bench/idx.py .dev/
# then copy the tree with .gl/ and .dev/ there and run `bash benches/device.sh` in its root.
# MNIST comes from assets/mnist. Results land in $OUT (bench.jsonl, torch.log).
set -u
for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
out="${OUT:-/tmp}"
nvidia-smi -L
.dev/gpu-cnn devices
for batch in 32 128 512; do
  for run in 1 2; do
    .dev/gpu-cnn bench --batch "$batch" --steps 1000 --warmup 50 --pass-reps "$([ "$run" = 1 ] && echo 20 || echo 0)" --json \
      | tee -a "$out/bench.log" | tail -n 1 >> "$out/bench.jsonl"
  done
done
export PYTHONUNBUFFERED=1
for mode in eager graphs; do
  python3 .dev/torch_cnn.py --device cuda --mode "$mode" --epochs 2 --data assets/mnist 2>&1 | tee -a "$out/torch.log"
done
