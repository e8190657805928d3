// The conv weights' channel-last copies an optimizer pass keeps in step (`AdamCopy` in
// src/layers/optimizer.rs): with params.copies > 0, the new weights of each conv in
// params.table[..copies] also go to their copy in `wt` (the layout of conv2d_transpose_weight:
// wt[wt_offset + (tap * c_in + ci) * c4 * 4 + co] = weight[co, ci, tap]), so the conv passes
// of the next step need no transposition of their own. The including pass declares `params`
// (copies, lo, hi, table) and `wt`.

#include "divmod"

struct Copy {
    offset: u32,
    c_out: u32,
    c_in: u32,
    taps: u32,
    wt_offset: u32,
    c4: u32,
    _pad0: u32,
    _pad1: u32,
}

// Elements 4i .. 4i + 3 of the flat parameters, now w: into the copies that hold them.
fn keep_copies(i: u32, w: vec4<f32>) {
    if (4u * i + 3u < params.lo || 4u * i >= params.hi) {
        return;
    }
    for (var r = 0u; r < params.copies; r++) {
        let c = params.table[r];
        let per = c.c_in * c.taps;
        let end = c.offset + c.c_out * per;
        if (4u * i + 3u < c.offset || 4u * i >= end) {
            continue;
        }
        // The first element of the 4 in this conv, as (co, ci, tap), then step through the rest.
        let k0 = max(4u * i, c.offset);
        let k1 = min(4u * i + 4u, end);
        let co_rest = divmod(k0 - c.offset, per);
        let ci_tap = divmod(co_rest.y, c.taps);
        var co = co_rest.x;
        var ci = ci_tap.x;
        var tap = ci_tap.y;
        for (var k = k0; k < k1; k++) {
            wt[c.wt_offset + (tap * c.c_in + ci) * c.c4 * 4u + co] = w[k - 4u * i];
            tap++;
            if (tap == c.taps) {
                tap = 0u;
                ci++;
                if (ci == c.c_in) {
                    ci = 0u;
                    co++;
                }
            }
        }
    }
}
