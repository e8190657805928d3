// probe_subgroup: measures the subgroup size a compute pipeline really gets on this device, since
// adapters report ranges (Metal in wgpu says 4..64 whatever the GPU does). Every invocation of one
// workgroup writes its subgroup's size; the host takes the smallest.
//   sizes is (64).
// Dispatch: (1, 1, 1). Needs subgroup support (like every `*_subgroup` file).

@group(0) @binding(0) var<storage, read_write> sizes: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32, @builtin(subgroup_size) size: u32) {
    sizes[i] = size;
}
