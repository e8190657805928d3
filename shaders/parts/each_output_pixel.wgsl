// Statements opening a pass with one invocation per output element of a (batch, channels, h_out,
// w_out) output (a 1-D grid of gid and nwg): i and its plane nc; past the end it returns.
let i = gid.x + gid.y * nwg.x * 64u;
let plane = params.h_out * params.w_out;
if (i >= params.batch * params.channels * plane) {
    return;
}
let nc = i / plane;
