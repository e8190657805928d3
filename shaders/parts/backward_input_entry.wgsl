// The input-gradient entry point of a layer's backward file (conv2d_backward, dense_backward):
// one input_tile per invocation, with the workgroup and the subgroup lane in the SUBGROUP
// variant.
@compute @workgroup_size(WG)
#if !SUBGROUP
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    input_tile(gid);
#else
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(subgroup_invocation_id) lane: u32) {
    input_tile(gid, wid, lane);
#endif
}
