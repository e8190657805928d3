// step_advance: moves the GPU-side step counter to the next step of the recorded program.
//   state[0] += 1. Passes that vary per step (gather_batch's offset, Adam's alpha, the metrics
//   slot) read state[0], so a whole epoch can be recorded once and submitted in a few chunks.
// Dispatch: (1, 1, 1).

@group(0) @binding(0) var<storage, read_write> state: array<u32>;

@compute @workgroup_size(1)
fn main() {
    state[0] = state[0] + 1u;
}
