// The split-K weight gradient's partial sums, partial[z, co, j] (chunk z, output channel co,
// column j < cols), as conv2d_backward's weight passes and conv2d_backward_pooled's
// backward_weight store them from their register tiles. The including file declares
// `partial` and `params` (c_out).

// partial[z, c0 + i, j0 + t] = tile[i][t], t < 4, in range.
fn store_partial4(z: u32, c0: u32, j0: u32, cols: u32, tile: array<vec4<f32>, 8>) {
    let n = select(0u, min(cols - j0, 4u), j0 < cols);
    let z4 = vec4<f32>(0.0);
    partial_row(z, c0 + 0u, j0, cols, n, tile[0], z4);
    partial_row(z, c0 + 1u, j0, cols, n, tile[1], z4);
    partial_row(z, c0 + 2u, j0, cols, n, tile[2], z4);
    partial_row(z, c0 + 3u, j0, cols, n, tile[3], z4);
    partial_row(z, c0 + 4u, j0, cols, n, tile[4], z4);
    partial_row(z, c0 + 5u, j0, cols, n, tile[5], z4);
    partial_row(z, c0 + 6u, j0, cols, n, tile[6], z4);
    partial_row(z, c0 + 7u, j0, cols, n, tile[7], z4);
}

// partial[z, c0 + i, j0 + t] = tile[2 * i + t / 4][t % 4], in range. Unrolled over the
// channels: indexing a tile dynamically puts it in memory.
fn store_partial(z: u32, c0: u32, j0: u32, cols: u32, tile: array<vec4<f32>, 16>) {
    let n = select(0u, min(cols - j0, 8u), j0 < cols);
    partial_row(z, c0 + 0u, j0, cols, n, tile[0], tile[1]);
    partial_row(z, c0 + 1u, j0, cols, n, tile[2], tile[3]);
    partial_row(z, c0 + 2u, j0, cols, n, tile[4], tile[5]);
    partial_row(z, c0 + 3u, j0, cols, n, tile[6], tile[7]);
    partial_row(z, c0 + 4u, j0, cols, n, tile[8], tile[9]);
    partial_row(z, c0 + 5u, j0, cols, n, tile[10], tile[11]);
    partial_row(z, c0 + 6u, j0, cols, n, tile[12], tile[13]);
    partial_row(z, c0 + 7u, j0, cols, n, tile[14], tile[15]);
}

// partial[z, co, j0 + t] for the first n of the 8 columns (values a, b), if co is in range.
fn partial_row(z: u32, co: u32, j0: u32, cols: u32, n: u32, a: vec4<f32>, b: vec4<f32>) {
    if (co >= params.c_out) {
        return;
    }
    let o = (z * params.c_out + co) * cols + j0;
    for (var t = 0u; t < n; t++) {
        partial[o + t] = select(b[t % 4u], a[t % 4u], t < 4u);
    }
}
