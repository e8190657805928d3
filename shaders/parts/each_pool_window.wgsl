// Statements opening a pooling pass with one invocation per output element (a 1-D grid of gid
// and nwg): i, its plane nc, the window's top-left (y0, x0) in the input and the input plane's
// start base; past the end it returns.
let i = gid.x + gid.y * nwg.x * 64u;
let plane_out = params.h_out * params.w_out;
if (i >= params.batch * params.channels * plane_out) {
    return;
}
let nc = i / plane_out;
let r = i % plane_out;
let y0 = (r / params.w_out) * params.stride;
let x0 = (r % params.w_out) * params.stride;
let base = nc * params.h_in * params.w_in;
