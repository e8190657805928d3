// random_affine_forward: the geometric augmentation layers (RandomFlip, RandomTranslation,
//   RandomRotation, RandomZoom). Training: each image n gets a 2x3 matrix from its draws of this
//   step (hash of seed, t, salt, n), built as `layers::augment::matrix` builds it, and output
//   pixel (x, y) of each channel is the input sampled bilinearly at (a0 x + a1 y + a2,
//   b0 x + b1 y + b2) with Keras' fill modes, as keras.ops.image.affine_transform does.
//   Otherwise out = inp.
// With GIVEN (affine_transform): the matrices are read from `matrices` (6 per image), always.
// Dispatch: one invocation per output value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x,
//   ((n * channels + c) * height + y) * width + x.

#include "random_affine_params"

#include "step"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
#if GIVEN
@group(0) @binding(1) var<storage, read> matrices: array<f32>;
#else
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

#include "dropout_hash"

#include "augment_draw"

// sin and cos of x radians, as `layers::augment::sin_cos` computes them: x reduced to
// [-pi, pi], Taylor series to x^17 and x^18 by Horner, in f32.
fn sin_cos(x: f32) -> vec2<f32> {
    let r = x - 6.2831855 * floor(x / 6.2831855 + 0.5);
    let r2 = r * r;
    var s = 2.8114574e-15;
    s = 7.6471636e-13 - r2 * s;
    s = 1.6059044e-10 - r2 * s;
    s = 2.5052108e-8 - r2 * s;
    s = 2.7557319e-6 - r2 * s;
    s = 1.984127e-4 - r2 * s;
    s = 0.008333334 - r2 * s;
    s = 0.16666667 - r2 * s;
    s = 1.0 - r2 * s;
    var c = 1.5619207e-16;
    c = 4.7794773e-14 - r2 * c;
    c = 1.1470745e-11 - r2 * c;
    c = 2.0876756e-9 - r2 * c;
    c = 2.755732e-7 - r2 * c;
    c = 2.4801588e-5 - r2 * c;
    c = 1.3888889e-3 - r2 * c;
    c = 0.041666668 - r2 * c;
    c = 0.5 - r2 * c;
    c = 1.0 - r2 * c;
    return vec2<f32>(r * s, c);
}

fn draw(lo: f32, hi: f32, u: f32) -> f32 {
    return u * (hi - lo) + lo;
}

// Image n's matrix (a0, a1, a2, b0, b1, b2) for draws u0 and u1.
fn matrix(u0: f32, u1: f32) -> array<f32, 6> {
    let h = f32(params.height);
    let w = f32(params.width);
    var m = array<f32, 6>(1.0, 0.0, 0.0, 0.0, 1.0, 0.0);
    if (params.kind == 0u) {
        if (u0 <= 0.5) {
            if ((params.mode & 1u) != 0u) {
                m[0] = -1.0;
                m[2] = w - 1.0;
            }
            if ((params.mode & 2u) != 0u) {
                m[4] = -1.0;
                m[5] = h - 1.0;
            }
        }
    } else if (params.kind == 1u) {
        m[5] = -(draw(params.lo0, params.hi0, u0) * h);
        m[2] = -(draw(params.lo1, params.hi1, u1) * w);
    } else if (params.kind == 2u) {
        let deg = draw(params.lo0 * 360.0, params.hi0 * 360.0, u0);
        let sc = sin_cos(deg * 0.017453292);
        let cx = 0.5 * (w - 1.0);
        let cy = 0.5 * (h - 1.0);
        m[0] = sc.y;
        m[1] = -sc.x;
        m[2] = cx - cx * m[0] - cy * m[1];
        m[3] = sc.x;
        m[4] = sc.y;
        m[5] = cy - cx * m[3] - cy * m[4];
    } else {
        let zy = draw(1.0 + params.lo0, 1.0 + params.hi0, u0);
        var zx = zy;
        if ((params.mode & 1u) != 0u) {
            zx = draw(1.0 + params.lo1, 1.0 + params.hi1, u1);
        }
        m[0] = zx;
        m[2] = (w - 1.0) / 2.0 * (1.0 - zx);
        m[4] = zy;
        m[5] = (h - 1.0) / 2.0 * (1.0 - zy);
    }
    return m;
}

// Python's floor modulo, in [0, n).
fn floor_mod(i: i32, n: i32) -> i32 {
    return ((i % n) + n) % n;
}

// Index i of an axis of n pixels as the fill mode reads it (Keras' torch index fixers).
fn fix_index(i: i32, n: i32) -> i32 {
    if (params.fill == 0u) {
        let s = 2 * n;
        let m = abs(floor_mod(2 * i + 1 + s, 2 * s) - s);
        return (m - 1) / 2;
    }
    if (params.fill == 1u) {
        return floor_mod(i, n);
    }
    return clamp(i, 0, n - 1);
}

// The value of plane `base` at pixel (yi, xi), or the fill value outside with fill mode constant.
fn pixel(base: u32, yi: i32, xi: i32) -> f32 {
    let h = i32(params.height);
    let w = i32(params.width);
    if (params.fill == 2u && (yi < 0 || yi >= h || xi < 0 || xi >= w)) {
        return params.fill_value;
    }
    return inp[base + u32(fix_index(yi, h) * w + fix_index(xi, w))];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.height * params.width;
    if (i >= params.batch * params.channels * plane) {
        return;
    }
    let n = i / (params.channels * plane);
#if GIVEN
    let m = array<f32, 6>(matrices[6u * n], matrices[6u * n + 1u], matrices[6u * n + 2u],
                          matrices[6u * n + 3u], matrices[6u * n + 4u], matrices[6u * n + 5u]);
#else
    if (params.training == 0u) {
        out[i] = inp[i];
        return;
    }
    let step = steps[state[0]];
    let m = matrix(augment_draw(step, n, 0u), augment_draw(step, n, 1u));
#endif
    let p = i % plane;
    let x = f32(p % params.width);
    let y = f32(p / params.width);
    let base = i - p;
    let sy = m[3] * x + m[4] * y + m[5];
    let sx = m[0] * x + m[1] * y + m[2];
    let fy = floor(sy);
    let fx = floor(sx);
    let wy1 = sy - fy;
    let wx1 = sx - fx;
    let wy0 = 1.0 - wy1;
    let wx0 = 1.0 - wx1;
    let y0 = i32(fy);
    let x0 = i32(fx);
    var v = wy0 * wx0 * pixel(base, y0, x0);
    v += wy0 * wx1 * pixel(base, y0, x0 + 1);
    v += wy1 * wx0 * pixel(base, y0 + 1, x0);
    v += wy1 * wx1 * pixel(base, y0 + 1, x0 + 1);
    out[i] = v;
}
