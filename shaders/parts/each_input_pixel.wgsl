// Statements opening a pass with one invocation per input element (a 1-D grid of gid and nwg):
// i, and its plane nc (batch x channels), row y and column x; past the end it returns.
let i = gid.x + gid.y * nwg.x * 64u;
let plane = params.h_in * params.w_in;
if (i >= params.batch * params.channels * plane) {
    return;
}
let nc = i / plane;
let y = (i % plane) / params.w_in;
let x = i % params.w_in;
