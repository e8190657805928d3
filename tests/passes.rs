//! Every GPU pass against the CPU reference on seeded random inputs with awkward shapes
//! (batch 3, sizes that are not multiples of the tile or workgroup size).

mod common;
use common::*;

use gpu_cnn::gpu::trainer::pack_bytes;
use gpu_cnn::gpu::{layers, Gpu, Tensor};
use gpu_cnn::layers::*;
use gpu_cnn::reference;

fn run(gpu: &Gpu, prog: &[gpu_cnn::gpu::Dispatch]) {
    let refs: Vec<_> = prog.iter().collect();
    gpu.run(&refs).expect("submit");
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    gpu.read::<f32>(&[t]).expect("readback").remove(0)
}

fn read_u32(gpu: &Gpu, t: &Tensor) -> Vec<u32> {
    gpu.read::<u32>(&[t]).expect("readback").remove(0)
}

/// Output tensors start as NaN so that an element the shader forgets to write fails the check.
fn nan_filled(gpu: &Gpu, n: usize) -> Tensor {
    gpu.upload("out", &vec![f32::NAN; n]).unwrap()
}

/// Every shape runs the portable kernels; c_in % 4 == 0 (4 and 8 below; 4 puts two taps in one
/// 8-column tile of the weight gradient) also the channel-last subgroup ones.
/// 20 channels in and 18 out span two of the subgroup kernels' 16-channel tiles, the second
/// partly.
const CONV_SHAPES: [(usize, usize, usize, usize, usize, usize); 6] = [
    // (batch, c_in, h, w, c_out, k)
    (3, 1, 11, 9, 5, 3),
    (3, 6, 7, 8, 7, 3),
    (2, 3, 6, 5, 9, 2),
    (3, 8, 7, 6, 10, 3),
    (2, 4, 6, 7, 13, 2),
    (2, 20, 5, 6, 18, 3),
];

/// The kernel choices to test for `p`, as (subgroups on the device, params): the portable
/// kernels; the subgroup ones with `p` as given; and channel-last where c_in % 4 == 0. On the
/// CI adapter (GPU_CNN_REQUIRE_GPU=1, lavapipe) subgroups must be there, or the fast paths
/// would go untested.
fn conv_variants(gpu: &Gpu, p: Conv2dParams) -> Vec<(bool, Conv2dParams)> {
    if std::env::var("GPU_CNN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        assert!(gpu.subgroups, "{} has no subgroups of >= 8", gpu.info.name);
    }
    let mut v = vec![(false, p)];
    if gpu.subgroups {
        v.push((true, p));
        let fast = layers::conv2d_select(gpu, p);
        assert_eq!(fast.channel_last, p.c_in.is_multiple_of(4) as u32);
        if fast.channel_last != 0 {
            v.push((true, fast));
        }
    }
    v
}

#[test]
fn conv2d_forward_matches_reference() {
    let Some(mut gpu) = gpu() else { return };
    for (si, &(n, c, h, w, oc, k)) in CONV_SHAPES.iter().enumerate() {
        for relu in [false, true] {
            for (sg, p) in conv_variants(&gpu, Conv2dParams::new(n, c, h, w, oc, k, relu)) {
                gpu.subgroups = sg;
                let inp = rand_vec(si as u64, p.inp_len(), -1.0, 1.0);
                let wt = rand_vec(100 + si as u64, p.weight_len(), -0.5, 0.5);
                let b = rand_vec(200 + si as u64, oc, -0.3, 0.3);
                let mut want = vec![0.0; p.out_len()];
                reference::conv2d_forward(&mut want, &inp, &wt, &b, &p);
                let (ti, tw, tb) = (
                    gpu.upload("inp", &inp).unwrap(),
                    gpu.upload("w", &wt).unwrap(),
                    gpu.upload("b", &b).unwrap(),
                );
                let out = nan_filled(&gpu, p.out_len());
                let scratch = layers::conv2d_scratch(&gpu, &p).unwrap();
                let mut prog = Vec::new();
                layers::conv2d_forward(&gpu, &mut prog, &out, &ti, &tw, &tb, &scratch, &p).unwrap();
                run(&gpu, &prog);
                assert_close(
                    &format!("conv2d_forward subgroups {sg} {p:?}"),
                    &read(&gpu, &out),
                    &want,
                    PASS,
                );
            }
        }
    }
}

#[test]
fn conv2d_backward_matches_reference() {
    let Some(mut gpu) = gpu() else { return };
    for (si, &(n, c, h, w, oc, k)) in CONV_SHAPES.iter().enumerate() {
        for relu in [false, true] {
            // A chunk that does not divide the pixel count exercises the split-K tail.
            let p0 = Conv2dParams {
                chunk: 37,
                ..Conv2dParams::new(n, c, h, w, oc, k, relu)
            };
            for (sg, p) in conv_variants(&gpu, p0) {
                gpu.subgroups = sg;
                // A GPU's tiling, which joins the weight and input passes (tests/tuning.rs
                // gives a CPU adapter's, two dispatches, the same bits).
                gpu.conv_backward_tiling =
                    Some(gpu_cnn::gpu::tuning::ConvBackwardTiling::default_for(
                        wgpu::DeviceType::DiscreteGpu,
                    ));
                let inp = rand_vec(si as u64, p.inp_len(), -1.0, 1.0);
                let wt = rand_vec(100 + si as u64, p.weight_len(), -0.5, 0.5);
                let b = rand_vec(200 + si as u64, oc, -0.3, 0.3);
                let dout = rand_vec(300 + si as u64, p.out_len(), -1.0, 1.0);
                let mut out = vec![0.0; p.out_len()];
                reference::conv2d_forward(&mut out, &inp, &wt, &b, &p);
                let mut dinp = vec![0.0; p.inp_len()];
                let (mut dw, mut db) = (vec![0.0; wt.len()], vec![0.0; oc]);
                reference::conv2d_backward(
                    Some(&mut dinp),
                    &mut dw,
                    &mut db,
                    &out,
                    &dout,
                    &inp,
                    &wt,
                    &p,
                );

                let t = |d: &[f32]| gpu.upload("t", d).unwrap();
                let (ti, tw, tb, to, tdo) = (t(&inp), t(&wt), t(&b), t(&out), t(&dout));
                let (gdinp, gdw, gdb) = (
                    nan_filled(&gpu, dinp.len()),
                    nan_filled(&gpu, dw.len()),
                    nan_filled(&gpu, oc),
                );
                let scratch = layers::conv2d_scratch(&gpu, &p).unwrap();
                // With gpu.fuse the weight and input passes share a dispatch when one file has
                // both (portable, or subgroup with channel-last); the same bits either way.
                let mut runs = Vec::new();
                for fuse in [true, false] {
                    gpu.fuse = fuse;
                    let mut prog = Vec::new();
                    // The forward pass fills the channel-last input copy the weight gradient reads.
                    let gout = gpu.zeros("out", p.out_len()).unwrap();
                    layers::conv2d_forward(&gpu, &mut prog, &gout, &ti, &tw, &tb, &scratch, &p)
                        .unwrap();
                    let forward = prog.len();
                    layers::conv2d_backward(
                        &gpu,
                        &mut prog,
                        Some(&gdinp),
                        &gdw,
                        &gdb,
                        &to,
                        &tdo,
                        &ti,
                        &tw,
                        &scratch,
                        &p,
                    )
                    .unwrap();
                    run(&gpu, &prog);
                    let what = format!("subgroups {sg} fuse {fuse} {p:?}");
                    let (gi, gw, gb) = (read(&gpu, &gdinp), read(&gpu, &gdw), read(&gpu, &gdb));
                    assert_close(&format!("conv2d dinp {what}"), &gi, &dinp, PASS);
                    assert_close(&format!("conv2d dweight {what}"), &gw, &dw, PASS);
                    assert_close(&format!("conv2d dbias {what}"), &gb, &db, PASS);
                    runs.push((prog.len() - forward, gi, gw, gb));
                }
                gpu.fuse = true;
                let joined = sg == (p.channel_last != 0);
                assert_eq!(
                    (runs[0].0, runs[1].0),
                    (4 - joined as usize, 4),
                    "backward dispatches, subgroups {sg} {p:?}"
                );
                assert!(runs[0].1 == runs[1].1, "dinp bit for bit, {sg} {p:?}");
                assert!(runs[0].2 == runs[1].2, "dweight bit for bit, {sg} {p:?}");
                assert!(runs[0].3 == runs[1].3, "dbias bit for bit, {sg} {p:?}");
            }
        }
    }
}

#[test]
fn conv2d_transpose_weight_matches_reference() {
    let Some(gpu) = gpu() else { return };
    for (c, oc, k) in [(3, 5, 3), (2, 8, 2), (1, 32, 3)] {
        let p = Conv2dParams::new(1, c, 6, 6, oc, k, true);
        let w = rand_vec(5, p.weight_len(), -1.0, 1.0);
        let mut want = vec![f32::NAN; layers::conv2d_wt_len(&p)];
        reference::conv2d_transpose_weight(&mut want, &w, &p);
        let gw = nan_filled(&gpu, want.len());
        let mut prog = Vec::new();
        layers::conv2d_transpose_weight(&gpu, &mut prog, &gw, &gpu.upload("w", &w).unwrap(), &p)
            .unwrap();
        run(&gpu, &prog);
        assert_eq!(read(&gpu, &gw), want, "conv2d_transpose_weight {p:?}");
    }
}

#[test]
fn maxpool2d_matches_reference() {
    let Some(gpu) = gpu() else { return };
    // stride >= size takes the per-window backward kernel (with uncovered rows and columns
    // when the size does not divide, and gaps when stride > size); stride < size the
    // per-element one. 2x2 stride 2 on an even width takes the vec2 forward kernel; the last
    // shape has many ties (values in steps of 0.5, like the zeros after a ReLU), which must
    // keep the first in scan order.
    for (size, stride, h, w, ties) in [
        (2, 2, 7, 9, false),
        (3, 3, 8, 7, false),
        (2, 2, 26, 26, false),
        (2, 3, 8, 10, false),
        (3, 2, 9, 8, false),
        (2, 2, 7, 10, true),
    ] {
        let p = Maxpool2dParams::new(3, 5, h, w, size, stride);
        let mut inp = rand_vec(7, p.inp_len(), -1.0, 1.0);
        for (i, v) in inp.iter_mut().enumerate() {
            *v = if ties {
                (*v * 2.0).round() / 2.0
            } else {
                // Distinct values: no ties in any window.
                *v + i as f32 * 1e-3
            };
        }
        let dout = rand_vec(8, p.out_len(), -1.0, 1.0);
        let (mut out, mut am) = (vec![0.0; p.out_len()], vec![0u32; p.out_len()]);
        reference::maxpool2d_forward(&mut out, &mut am, &inp, &p);
        let mut dinp = vec![0.0; p.inp_len()];
        reference::maxpool2d_backward(&mut dinp, &am, &dout, &p);

        let (ti, tdo) = (
            gpu.upload("inp", &inp).unwrap(),
            gpu.upload("dout", &dout).unwrap(),
        );
        let (gout, gam, gdinp) = (
            nan_filled(&gpu, out.len()),
            gpu.zeros("am", am.len()).unwrap(),
            nan_filled(&gpu, dinp.len()),
        );
        let mut prog = Vec::new();
        layers::maxpool2d_forward(&gpu, &mut prog, &gout, &gam, &ti, &p).unwrap();
        layers::maxpool2d_backward(&gpu, &mut prog, &gdinp, &gam, &tdo, &p).unwrap();
        run(&gpu, &prog);
        assert_close(
            &format!("maxpool2d out {p:?}"),
            &read(&gpu, &gout),
            &out,
            PASS,
        );
        assert_eq!(read_u32(&gpu, &gam), am, "maxpool2d argmax {p:?}");
        assert_close(
            &format!("maxpool2d dinp {p:?}"),
            &read(&gpu, &gdinp),
            &dinp,
            PASS,
        );
    }
}

#[test]
fn dense_matches_reference() {
    let Some(mut gpu) = gpu() else { return };
    // (subgroups, blocks of 8 rows per invocation of the subgroup backward kernels,
    // invocations per workgroup of the backward kernels).
    let mut variants = vec![(false, 1, 64), (false, 1, 8)];
    if gpu.subgroups {
        variants.extend([
            (true, 1, 64),
            (true, 1, 8),
            (true, 2, 8),
            (true, 4, 8),
            (true, 4, 64),
        ]);
    }
    // Batch 11 and 19 outputs span two 8-row and 8-output tiles of the backward kernels. The
    // subgroup kernels run only where at least half of their x grid's tiles are real: 260
    // outputs and 300 inputs (9 rows and 260 outputs fill blocks of 16 and 32 partly).
    for (n, i, o) in [
        (3, 37, 13),
        (5, 130, 10),
        (1, 3, 1),
        (11, 70, 19),
        (9, 300, 260),
    ] {
        for relu in [false, true] {
            // Each kernel's forward and backward results with its first tiling: every block
            // count and workgroup size gives these bits.
            let mut first: [Option<[Vec<f32>; 4]>; 2] = [None, None];
            for &(sg, rb, wg) in &variants {
                gpu.subgroups = sg;
                gpu.tile_blocks = rb;
                gpu.narrow_workgroup = wg;
                let p = DenseParams::new(n, i, o, relu);
                let inp = rand_vec(1, n * i, -1.0, 1.0);
                let wt = rand_vec(2, o * i, -0.5, 0.5);
                let b = rand_vec(3, o, -0.3, 0.3);
                let dout = rand_vec(4, n * o, -1.0, 1.0);
                let mut out = vec![0.0; n * o];
                reference::dense_forward(&mut out, &inp, &wt, &b, &p);
                let mut dinp = vec![0.0; n * i];
                let (mut dw, mut db) = (vec![0.0; o * i], vec![0.0; o]);
                reference::dense_backward_input(&mut dinp, &out, &dout, &wt, &p);
                reference::dense_backward_weight(&mut dw, &mut db, &out, &dout, &inp, &p);

                let t = |d: &[f32]| gpu.upload("t", d).unwrap();
                let (ti, tw, tb, tdo) = (t(&inp), t(&wt), t(&b), t(&dout));
                let gout = nan_filled(&gpu, out.len());
                let mut prog = Vec::new();
                layers::dense_forward(&gpu, &mut prog, &gout, &ti, &tw, &tb, &p).unwrap();
                assert_eq!(
                    prog[0].label.contains("_subgroup"),
                    sg && o == 260,
                    "{}",
                    prog[0].label
                );
                run(&gpu, &prog);
                let got_out = read(&gpu, &gout);
                assert_close(
                    &format!("dense_forward subgroups {sg} {p:?}"),
                    &got_out,
                    &out,
                    PASS,
                );

                let to = t(&out);
                let (gdinp, gdw, gdb) = (
                    nan_filled(&gpu, dinp.len()),
                    nan_filled(&gpu, dw.len()),
                    nan_filled(&gpu, o),
                );
                let mut prog = Vec::new();
                layers::dense_backward_input(&gpu, &mut prog, &gdinp, &to, &tdo, &tw, &p).unwrap();
                layers::dense_backward_weight(&gpu, &mut prog, &gdw, &gdb, &to, &tdo, &ti, &p)
                    .unwrap();
                run(&gpu, &prog);
                // The joined pass (one dispatch): the reference's composition, and the bits of
                // the two passes.
                let mut want = (vec![0.0; n * i], vec![0.0; o * i], vec![0.0; o]);
                reference::dense_backward(
                    Some(&mut want.0),
                    &mut want.1,
                    &mut want.2,
                    &out,
                    &dout,
                    &inp,
                    &wt,
                    &p,
                );
                assert_eq!(want, (dinp.clone(), dw.clone(), db.clone()));
                let (jdinp, jdw, jdb) = (
                    nan_filled(&gpu, dinp.len()),
                    nan_filled(&gpu, dw.len()),
                    nan_filled(&gpu, o),
                );
                let mut joined = Vec::new();
                layers::dense_backward(
                    &gpu,
                    &mut joined,
                    Some(&jdinp),
                    &jdw,
                    &jdb,
                    &to,
                    &tdo,
                    &ti,
                    &tw,
                    &p,
                )
                .unwrap();
                assert_eq!(joined.len(), 1, "one dispatch");
                // The subgroup kernel runs where at least half of its x grid's invocations
                // have inputs: 300 inputs at 64 per workgroup, all but 3 at 8.
                let fits = if wg == 64 { i == 300 } else { i != 3 };
                assert_eq!(
                    joined[0].label.contains("_subgroup"),
                    sg && fits,
                    "{wg} {p:?}"
                );
                run(&gpu, &joined);
                assert_eq!(
                    read(&gpu, &jdinp),
                    read(&gpu, &gdinp),
                    "joined dinp {sg} {p:?}"
                );
                assert_eq!(
                    read(&gpu, &jdw),
                    read(&gpu, &gdw),
                    "joined dweight {sg} {p:?}"
                );
                assert_eq!(
                    read(&gpu, &jdb),
                    read(&gpu, &gdb),
                    "joined dbias {sg} {p:?}"
                );
                let got = [
                    got_out.clone(),
                    read(&gpu, &gdinp),
                    read(&gpu, &gdw),
                    read(&gpu, &gdb),
                ];
                match &first[sg as usize] {
                    Some(want) => assert_eq!(
                        &got, want,
                        "{rb} row blocks, {wg} per workgroup against the first tiling, {p:?}"
                    ),
                    None => first[sg as usize] = Some(got),
                }
                assert_close(
                    &format!("dense dinp subgroups {sg} {p:?}"),
                    &read(&gpu, &gdinp),
                    &dinp,
                    PASS,
                );
                assert_close(
                    &format!("dense dweight subgroups {sg} {p:?}"),
                    &read(&gpu, &gdw),
                    &dw,
                    PASS,
                );
                assert_close(
                    &format!("dense dbias subgroups {sg} {p:?}"),
                    &read(&gpu, &gdb),
                    &db,
                    PASS,
                );
            }
        }
    }
}

#[test]
fn softmax_xent_matches_reference() {
    let Some(gpu) = gpu() else { return };
    // 70 rows: more than the 64 invocations of the forward's single workgroup.
    for (n, k) in [(3, 10), (70, 7)] {
        let p = SoftmaxXentParams::new(n, k);
        let mut logits = rand_vec(9, n * k, -4.0, 4.0);
        logits[0] += 200.0; // needs the max subtraction
        let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7 + 3) % k as u32).collect();
        let mut metrics = [0.0f32; 2];
        reference::softmax_xent_forward(&mut metrics, &logits, &labels, &p);
        let mut d = vec![0.0; n * k];
        reference::softmax_xent_backward(&mut d, &logits, &labels, &p);

        let (tl, ty) = (
            gpu.upload("logits", &logits).unwrap(),
            gpu.upload("labels", &labels).unwrap(),
        );
        // The forward writes slot state[0] = 2 of the metrics buffer, then hands step 2 on to
        // the backward passes (state[1]) and advances the counter.
        let state = gpu.upload("state", &[2u32, 9]).unwrap();
        let gm = nan_filled(&gpu, 8);
        let gd = nan_filled(&gpu, n * k);
        let mut prog = Vec::new();
        layers::softmax_xent_forward(&gpu, &mut prog, &gm, &tl, &ty, &state, &p).unwrap();
        layers::softmax_xent_backward(&gpu, &mut prog, &gd, &tl, &ty, &p).unwrap();
        run(&gpu, &prog);
        let m = read(&gpu, &gm);
        assert_close("softmax_xent_forward metrics", &m[4..6], &metrics, PASS);
        assert!(
            m[..4].iter().chain(&m[6..]).all(|v| v.is_nan()),
            "only slot 2 is written: {m:?}"
        );
        assert_close("softmax_xent_backward", &read(&gpu, &gd), &d, PASS);
        assert_eq!(read_u32(&gpu, &state), vec![3, 2], "the step counter");
        let state = gpu.upload("state", &[2u32, 9]).unwrap();
        // The fused training pass: the reference's composition, and the unfused passes' bits.
        let mut fm = [0.0f32; 2];
        let mut fd = vec![0.0; n * k];
        reference::softmax_xent(&mut fm, &mut fd, &logits, &labels, &p);
        assert_eq!((fm, &fd), (metrics, &d));
        let (fgm, fgd) = (nan_filled(&gpu, 8), nan_filled(&gpu, n * k));
        let mut prog = Vec::new();
        layers::softmax_xent(&gpu, &mut prog, &fgm, &fgd, &tl, &ty, &state, &p).unwrap();
        run(&gpu, &prog);
        let fused = read(&gpu, &fgm);
        assert_eq!(fused[4..6], m[4..6], "fused metrics, bit for bit");
        assert!(fused[..4].iter().chain(&fused[6..]).all(|v| v.is_nan()));
        assert_eq!(
            read(&gpu, &fgd),
            read(&gpu, &gd),
            "fused dlogits, bit for bit"
        );
        assert_eq!(
            read_u32(&gpu, &state),
            vec![3, 2],
            "the fused pass's step counter"
        );
    }
}

#[test]
fn avgpool2d_matches_reference() {
    let Some(gpu) = gpu() else { return };
    // Gaps (stride > size, with uncovered rows and columns), overlaps (stride < size), the
    // usual 2x2, and global pooling (the window of the whole, non-square plane).
    for (kh, kw, stride, h, w) in [
        (2, 2, 2, 7, 9),
        (2, 2, 3, 8, 10),
        (3, 3, 2, 9, 8),
        (3, 3, 1, 5, 6),
        (7, 9, 1, 7, 9),
        (1, 1, 1, 1, 1),
    ] {
        let p = Avgpool2dParams::new(3, 5, h, w, kh, kw, stride);
        let inp = rand_vec(9, p.inp_len(), -1.0, 1.0);
        let dout = rand_vec(10, p.out_len(), -1.0, 1.0);
        let mut out = vec![0.0; p.out_len()];
        reference::avgpool2d_forward(&mut out, &inp, &p);
        let mut dinp = vec![0.0; p.inp_len()];
        reference::avgpool2d_backward(&mut dinp, &dout, &p);
        let (ti, tdo) = (
            gpu.upload("inp", &inp).unwrap(),
            gpu.upload("dout", &dout).unwrap(),
        );
        let (gout, gdinp) = (nan_filled(&gpu, out.len()), nan_filled(&gpu, dinp.len()));
        let mut prog = Vec::new();
        layers::avgpool2d_forward(&gpu, &mut prog, &gout, &ti, &p).unwrap();
        layers::avgpool2d_backward(&gpu, &mut prog, &gdinp, &tdo, &p).unwrap();
        run(&gpu, &prog);
        assert_close(
            &format!("avgpool2d out {p:?}"),
            &read(&gpu, &gout),
            &out,
            PASS,
        );
        assert_close(
            &format!("avgpool2d dinp {p:?}"),
            &read(&gpu, &gdinp),
            &dinp,
            PASS,
        );
    }
}

/// The zero padding and the stride of `same` and strided convolutions (asymmetric padding, odd
/// sizes, strides that do not divide).
#[test]
fn pad2d_and_subsample2d_match_reference() {
    let Some(gpu) = gpu() else { return };
    for (h, w, pad, stride) in [
        (7, 9, [1, 1, 1, 1], 2),
        (5, 6, [0, 1, 1, 2], 3),
        (4, 4, [2, 0, 3, 1], 4),
        (1, 1, [1, 1, 1, 1], 2),
    ] {
        let pp = Pad2dParams::new(3, 5, h, w, pad);
        let sp = Subsample2dParams::new(3, 5, pp.h_out as usize, pp.w_out as usize, stride);
        let inp = rand_vec(15, pp.inp_len(), -1.0, 1.0);
        let dsub = rand_vec(16, sp.out_len(), -1.0, 1.0);
        let (mut padded, mut sub) = (vec![0.0; pp.out_len()], vec![0.0; sp.out_len()]);
        reference::pad2d_forward(&mut padded, &inp, &pp);
        reference::subsample2d_forward(&mut sub, &padded, &sp);
        let (mut dpadded, mut dinp) = (vec![0.0; pp.out_len()], vec![0.0; pp.inp_len()]);
        reference::subsample2d_backward(&mut dpadded, &dsub, &sp);
        reference::pad2d_backward(&mut dinp, &dpadded, &pp);
        let (ti, tds) = (
            gpu.upload("inp", &inp).unwrap(),
            gpu.upload("dsub", &dsub).unwrap(),
        );
        let (gp, gs) = (nan_filled(&gpu, padded.len()), nan_filled(&gpu, sub.len()));
        let (gdp, gdi) = (
            nan_filled(&gpu, dpadded.len()),
            nan_filled(&gpu, dinp.len()),
        );
        let mut prog = Vec::new();
        layers::pad2d_forward(&gpu, &mut prog, &gp, &ti, &pp).unwrap();
        layers::subsample2d_forward(&gpu, &mut prog, &gs, &gp, &sp).unwrap();
        layers::subsample2d_backward(&gpu, &mut prog, &gdp, &tds, &sp).unwrap();
        layers::pad2d_backward(&gpu, &mut prog, &gdi, &gdp, &pp).unwrap();
        run(&gpu, &prog);
        assert_eq!(read(&gpu, &gp), padded, "pad2d out {pp:?}");
        assert_eq!(read(&gpu, &gs), sub, "subsample2d out {sp:?}");
        assert_eq!(read(&gpu, &gdp), dpadded, "subsample2d dinp {sp:?}");
        assert_eq!(read(&gpu, &gdi), dinp, "pad2d dinp {pp:?}");
    }
}

#[test]
fn relu_matches_reference() {
    let Some(gpu) = gpu() else { return };
    let p = ReluParams::new(1001);
    // Values in steps of 0.5: exact zeros too, which must count as not positive.
    let inp: Vec<f32> = rand_vec(11, 1001, -2.0, 2.0)
        .iter()
        .map(|v| (v * 2.0).round() / 2.0)
        .collect();
    let dout = rand_vec(12, 1001, -1.0, 1.0);
    let (mut out, mut dinp) = (vec![0.0; 1001], vec![0.0; 1001]);
    reference::relu_forward(&mut out, &inp, &p);
    reference::relu_backward(&mut dinp, &out, &dout, &p);
    let (ti, tdo) = (
        gpu.upload("inp", &inp).unwrap(),
        gpu.upload("dout", &dout).unwrap(),
    );
    let (gout, gdinp) = (nan_filled(&gpu, 1001), nan_filled(&gpu, 1001));
    let mut prog = Vec::new();
    layers::relu_forward(&gpu, &mut prog, &gout, &ti, &p).unwrap();
    layers::relu_backward(&gpu, &mut prog, &gdinp, &gout, &tdo, &p).unwrap();
    run(&gpu, &prog);
    assert_eq!(read(&gpu, &gout), out);
    assert_eq!(read(&gpu, &gdinp), dinp);
}

/// The GPU draws the same dropout masks as the CPU reference (the same hash of seed, step, layer
/// and element), keeps about 1 - rate of the values, draws another mask for another step or
/// seed, and its backward pass zeroes exactly the values the forward pass dropped.
#[test]
fn dropout_matches_reference_and_keeps_one_minus_rate() {
    let Some(gpu) = gpu() else { return };
    let n = 200_003;
    let inp = rand_vec(13, n, 0.5, 1.5);
    let dout = rand_vec(14, n, 0.5, 1.5);
    let (ti, tdo) = (
        gpu.upload("inp", &inp).unwrap(),
        gpu.upload("dout", &dout).unwrap(),
    );
    let mut masks = Vec::new();
    for (rate, t, seed, salt) in [
        (0.25f32, 1u32, 42u32, 3usize),
        (0.25, 2, 42, 3),
        (0.25, 1, 43, 3),
        (0.25, 1, 42, 4),
        (0.5, 7, 42, 3),
        (0.0, 7, 42, 3),
    ] {
        let p = DropoutParams::new(1, n, rate, salt, true);
        let step = StepRecord {
            t,
            seed,
            ..Default::default()
        };
        let (mut out, mut dinp) = (vec![0.0; n], vec![0.0; n]);
        reference::dropout_forward(&mut out, &inp, &step, &p);
        reference::dropout_backward(&mut dinp, &dout, &step, &p);
        let steps = gpu.upload("steps", &[StepRecord::default(), step]).unwrap();
        // The forward pass reads the step from state[0], the backward pass from state[1].
        let state = gpu.upload("state", &[1u32, 1]).unwrap();
        let (gout, gdinp) = (nan_filled(&gpu, n), nan_filled(&gpu, n));
        let mut prog = Vec::new();
        layers::dropout_forward(&gpu, &mut prog, &gout, &ti, &steps, &state, &p).unwrap();
        layers::dropout_backward(&gpu, &mut prog, &gdinp, &tdo, &steps, &state, &p).unwrap();
        run(&gpu, &prog);
        let (go, gd) = (read(&gpu, &gout), read(&gpu, &gdinp));
        assert_eq!(go, out, "dropout out, rate {rate} t {t} seed {seed}");
        assert_eq!(gd, dinp, "dropout dinp, rate {rate} t {t} seed {seed}");
        let kept: Vec<bool> = go.iter().map(|&v| v != 0.0).collect();
        // The backward pass passes exactly the kept values, scaled.
        for i in 0..n {
            assert_eq!(gd[i] != 0.0, kept[i], "element {i}");
            if kept[i] {
                assert_eq!(go[i], inp[i] * p.scale);
            }
        }
        // Binomial: the kept fraction is within 5 standard deviations of 1 - rate.
        let frac = kept.iter().filter(|&&k| k).count() as f64 / n as f64;
        let sd = ((rate * (1.0 - rate)) as f64 / n as f64).sqrt();
        assert!(
            (frac - (1.0 - rate as f64)).abs() <= 5.0 * sd + 1e-12,
            "rate {rate}: kept {frac}"
        );
        masks.push(kept);
    }
    // Another step, seed or layer: another mask (about rate * (1 - rate) * 2 of the values differ).
    for other in &masks[1..4] {
        let differ = masks[0].iter().zip(other).filter(|(a, b)| a != b).count();
        assert!(differ > n / 4, "{differ} of {n} differ");
    }
    // Evaluation: the identity.
    let p = DropoutParams::new(1, n, 0.5, 3, false);
    let steps = gpu.upload("steps", &[StepRecord::default()]).unwrap();
    let state = gpu.zeros("state", 2).unwrap();
    let gout = nan_filled(&gpu, n);
    let mut prog = Vec::new();
    layers::dropout_forward(&gpu, &mut prog, &gout, &ti, &steps, &state, &p).unwrap();
    run(&gpu, &prog);
    assert_eq!(read(&gpu, &gout), inp);
}

#[test]
fn batchnorm_matches_reference() {
    let Some(gpu) = gpu() else { return };
    // (batch, channels, plane): odd planes; more elements per channel than the workgroup
    // (strided partial sums); a flat (dense-layer) input; one channel.
    for (si, &(n, c, hw)) in [(3, 5, 7 * 9), (4, 3, 1), (2, 16, 26 * 26), (5, 1, 130)]
        .iter()
        .enumerate()
    {
        let seed = 20 + si as u64 * 10;
        let inp = rand_vec(seed, n * c * hw, -2.0, 3.0);
        let dout = rand_vec(seed + 1, n * c * hw, -1.0, 1.0);
        let gamma = rand_vec(seed + 2, c, 0.5, 1.5);
        let beta = rand_vec(seed + 3, c, -0.5, 0.5);
        let mm0 = rand_vec(seed + 4, c, -0.2, 0.2);
        let mv0 = rand_vec(seed + 5, c, 0.5, 2.0);
        for training in [true, false] {
            let p = BatchnormParams::new(n, c, hw, 0.9, 1e-3, training);
            let (mut out, mut saved) = (vec![0.0; p.len()], vec![0.0; 2 * c]);
            let (mut mm, mut mv) = (mm0.clone(), mv0.clone());
            reference::batchnorm_forward(
                &mut out, &mut saved, &mut mm, &mut mv, &inp, &gamma, &beta, &p,
            );
            let (mut dinp, mut dg, mut db) = (vec![0.0; p.len()], vec![0.0; c], vec![0.0; c]);
            reference::batchnorm_backward(
                Some(&mut dinp),
                &mut dg,
                &mut db,
                &dout,
                &inp,
                &saved,
                &gamma,
                &p,
            );
            let t = |d: &[f32]| gpu.upload("t", d).unwrap();
            let (ti, tdo, tg, tb, tmm, tmv) =
                (t(&inp), t(&dout), t(&gamma), t(&beta), t(&mm0), t(&mv0));
            let (gout, gsaved) = (nan_filled(&gpu, p.len()), nan_filled(&gpu, 2 * c));
            let (gdinp, gdg, gdb) = (
                nan_filled(&gpu, p.len()),
                nan_filled(&gpu, c),
                nan_filled(&gpu, c),
            );
            let mut prog = Vec::new();
            layers::batchnorm_forward(
                &gpu, &mut prog, &gout, &gsaved, &tmm, &tmv, &ti, &tg, &tb, &p,
            )
            .unwrap();
            if training {
                layers::batchnorm_backward(
                    &gpu,
                    &mut prog,
                    Some(&gdinp),
                    &gdg,
                    &gdb,
                    &tdo,
                    &ti,
                    &gsaved,
                    &tg,
                    &p,
                )
                .unwrap();
            }
            run(&gpu, &prog);
            let what = format!("batchnorm {p:?}");
            assert_close(&format!("{what} out"), &read(&gpu, &gout), &out, PASS);
            assert_close(&format!("{what} saved"), &read(&gpu, &gsaved), &saved, PASS);
            assert_close(&format!("{what} moving mean"), &read(&gpu, &tmm), &mm, PASS);
            assert_close(&format!("{what} moving var"), &read(&gpu, &tmv), &mv, PASS);
            if training {
                assert_close(&format!("{what} dinp"), &read(&gpu, &gdinp), &dinp, PASS);
                assert_close(&format!("{what} dgamma"), &read(&gpu, &gdg), &dg, PASS);
                assert_close(&format!("{what} dbeta"), &read(&gpu, &gdb), &db, PASS);
            } else {
                assert_eq!(
                    (mm == mm0, mv == mv0),
                    (true, true),
                    "evaluation keeps them"
                );
            }
        }
    }
}

#[test]
fn gather_batch_and_adam_match_reference() {
    let Some(gpu) = gpu() else { return };
    // 5 images of 3x5 = 15 bytes each (not a multiple of 4): byte packing crosses words.
    let pixels = 15;
    let images: Vec<u8> = (0..5 * pixels).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = vec![4, 1, 0, 3, 2];
    let indices = [4u32, 2, 0, 3, 1];
    let p = GatherParams::new(3, pixels);
    // State 1 selects the second record: offset 2 for gather (state[0]), alpha 0.001 for Adam
    // (state[1], where the loss pass leaves the step it ended).
    let recs = [
        StepRecord {
            offset: 0,
            alpha: 0.5,
            ..Default::default()
        },
        StepRecord {
            offset: 2,
            alpha: 0.001,
            lr: 0.01,
            ..Default::default()
        },
    ];
    let (mut x, mut y) = (vec![0.0f32; 3 * pixels], vec![0u32; 3]);
    reference::gather_batch(&mut x, &mut y, &images, &labels, &indices, 2, &p);
    assert_eq!(y, vec![4, 3, 1], "labels of rows 0, 3, 1");

    let (ti, tl, tidx) = (
        gpu.upload("img", &pack_bytes(&images)).unwrap(),
        gpu.upload("lab", &pack_bytes(&labels)).unwrap(),
        gpu.upload("idx", &indices).unwrap(),
    );
    let tsteps = gpu.upload("steps", &recs).unwrap();
    let state = gpu.upload("state", &[1u32, 1]).unwrap();
    let (gx, gy) = (nan_filled(&gpu, 3 * pixels), gpu.zeros("y", 3).unwrap());

    let n = 1000;
    let (w0, m0, v0, g) = (
        rand_vec(1, n, -1.0, 1.0),
        rand_vec(2, n, -0.1, 0.1),
        rand_vec(3, n, 0.0, 0.01),
        rand_vec(4, n, -1.0, 1.0),
    );
    let adam = Optimizer::default();
    let ap = adam.params(n);
    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
    reference::adam_update(
        &mut w,
        &mut m,
        &mut v,
        &mut vec![0.0; n],
        &g,
        0.001,
        0.01,
        &ap,
    );
    let t = |d: &[f32]| gpu.upload("t", d).unwrap();
    let (gw, gm, gv, gg) = (t(&w0), t(&m0), t(&v0), t(&g));
    // Adam's v_hat, read only with AMSGrad.
    let none_a = gpu.zeros("a", 4).unwrap();

    let mut prog = Vec::new();
    layers::gather_batch(
        &gpu, &mut prog, &gx, &gy, &ti, &tl, &tidx, &tsteps, &state, &p,
    )
    .unwrap();
    layers::adam_update(
        &gpu, &mut prog, &gw, &gm, &gv, &none_a, &gg, &tsteps, &state, &ap, None,
    )
    .unwrap();
    run(&gpu, &prog);
    assert_close("gather_batch x", &read(&gpu, &gx), &x, PASS);
    assert_eq!(read_u32(&gpu, &gy), y, "gather_batch y");
    assert_close("adam weights", &read(&gpu, &gw), &w, PASS);
    assert_close("adam m", &read(&gpu, &gm), &m, PASS);
    assert_close("adam v", &read(&gpu, &gv), &v, PASS);
    assert_eq!(
        read_u32(&gpu, &state),
        vec![1, 1],
        "neither pass moves the counter"
    );

    // AdamW (the record's lr decays the weights first), and SGD plain, with momentum and
    // Nesterov's (the record's alpha is SGD's learning rate).
    let adamw = Optimizer::keras(OptimizerKind::AdamW);
    let awp = adamw.params(n);
    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
    reference::adam_update(
        &mut w,
        &mut m,
        &mut v,
        &mut vec![0.0; n],
        &g,
        0.001,
        0.01,
        &awp,
    );
    let (gw1, gm1, gv1) = (t(&w0), t(&m0), t(&v0));
    let mut prog = Vec::new();
    layers::adam_update(
        &gpu, &mut prog, &gw1, &gm1, &gv1, &none_a, &gg, &tsteps, &state, &awp, None,
    )
    .unwrap();
    run(&gpu, &prog);
    assert_close("adamw weights", &read(&gpu, &gw1), &w, PASS);
    let plain: Vec<f32> = read(&gpu, &gw);
    assert!(
        read(&gpu, &gw1).iter().zip(&plain).any(|(a, b)| a != b),
        "the decay moves the weights"
    );
    // AMSGrad: v_hat = max(v_hat, v) in `a`, some elements each way.
    let ams = Optimizer {
        amsgrad: true,
        ..Optimizer::default()
    };
    let amp = ams.params(n);
    let a0 = rand_vec(6, n, 0.0, 0.01);
    let (mut w, mut m, mut v, mut a) = (w0.clone(), m0.clone(), v0.clone(), a0.clone());
    reference::adam_update(&mut w, &mut m, &mut v, &mut a, &g, 0.001, 0.01, &amp);
    let (gw1, gm1, gv1, ga1) = (t(&w0), t(&m0), t(&v0), t(&a0));
    let mut prog = Vec::new();
    layers::adam_update(
        &gpu, &mut prog, &gw1, &gm1, &gv1, &ga1, &gg, &tsteps, &state, &amp, None,
    )
    .unwrap();
    run(&gpu, &prog);
    assert_close("amsgrad weights", &read(&gpu, &gw1), &w, PASS);
    assert_eq!(read(&gpu, &ga1), a, "amsgrad v_hat");
    assert!(a.iter().zip(&a0).any(|(x, y)| x != y) && a.iter().zip(&a0).any(|(x, y)| x == y));
    assert!(
        read(&gpu, &gw1).iter().zip(&plain).any(|(x, y)| x != y),
        "AMSGrad moves the weights differently"
    );
    for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
        let sgd = Optimizer {
            momentum,
            nesterov,
            ..Optimizer::keras(OptimizerKind::Sgd)
        };
        let sp = sgd.sgd_params(n);
        let (mut w, mut m) = (w0.clone(), m0.clone());
        reference::sgd_update(&mut w, &mut m, &g, 0.001, &sp);
        let (gw1, gm1) = (t(&w0), t(&m0));
        let mut prog = Vec::new();
        layers::sgd_update(&gpu, &mut prog, &gw1, &gm1, &gg, &tsteps, &state, &sp, None).unwrap();
        run(&gpu, &prog);
        let what = format!("sgd momentum {momentum} nesterov {nesterov}");
        assert_close(&format!("{what} weights"), &read(&gpu, &gw1), &w, PASS);
        assert_close(&format!("{what} momentum"), &read(&gpu, &gm1), &m, PASS);
        // By hand, element 0.
        let want0 = if momentum == 0.0 {
            w0[0] - g[0] * 0.001
        } else {
            let m1 = m0[0] * 0.9 - g[0] * 0.001;
            if nesterov {
                w0[0] + (m1 * 0.9 - g[0] * 0.001)
            } else {
                w0[0] + m1
            }
        };
        assert_eq!(w[0], want0, "{what}: the reference, by hand");
    }
    for (momentum, centered) in [(0.0, false), (0.5, false), (0.0, true), (0.5, true)] {
        let rms = Optimizer {
            momentum,
            centered,
            ..Optimizer::keras(OptimizerKind::Rmsprop)
        };
        let rp = rms.rmsprop_params(n);
        // From zero, as a run starts: the centered denominator v - a^2 stays positive.
        let a0 = vec![0.0f32; n];
        let (mut w, mut m, mut v, mut a) = (w0.clone(), m0.clone(), v0.clone(), a0.clone());
        reference::rmsprop_update(&mut w, &mut m, &mut v, &mut a, &g, 0.001, &rp);
        let (gw1, gm1, gv1, ga1) = (t(&w0), t(&m0), t(&v0), t(&a0));
        let mut prog = Vec::new();
        layers::rmsprop_update(
            &gpu, &mut prog, &gw1, &gm1, &gv1, &ga1, &gg, &tsteps, &state, &rp, None,
        )
        .unwrap();
        run(&gpu, &prog);
        let what = format!("rmsprop momentum {momentum} centered {centered}");
        assert_close(&format!("{what} weights"), &read(&gpu, &gw1), &w, PASS);
        assert_close(&format!("{what} velocity"), &read(&gpu, &gv1), &v, PASS);
        assert_close(&format!("{what} momentum"), &read(&gpu, &gm1), &m, PASS);
        assert_close(&format!("{what} average"), &read(&gpu, &ga1), &a, PASS);
        // By hand, element 0.
        let v1 = 0.9 * v0[0] + (1.0 - 0.9) * (g[0] * g[0]);
        let d = if centered {
            let a1 = 0.9 * a0[0] + (1.0 - 0.9) * g[0];
            v1 - a1 * a1 + 1e-7
        } else {
            v1 + 1e-7
        };
        let inc = 0.001 * g[0] / d.sqrt();
        let want0 = if momentum > 0.0 {
            w0[0] - (0.5 * m0[0] + inc)
        } else {
            w0[0] - inc
        };
        assert_eq!(w[0], want0, "{what}: the reference, by hand");
    }

    // Adam keeping two conv weight tensors' channel-last copies: the transposition of the new
    // weights (reference::conv2d_transpose_weight), bit for bit, and the same weights.
    let convs = [
        (64, Conv2dParams::new(1, 3, 5, 5, 5, 3, false)),
        (300, Conv2dParams::new(1, 4, 4, 4, 8, 2, false)),
    ];
    let mut table = Vec::new();
    let mut at = 0;
    for (offset, c) in &convs {
        table.push(AdamCopy {
            offset: *offset as u32,
            c_out: c.c_out,
            c_in: c.c_in,
            taps: c.kh * c.kw,
            wt_offset: at as u32,
            c4: c.c_out.div_ceil(4),
            _pad: [0; 2],
        });
        at += layers::conv2d_wt_len(c).div_ceil(64) * 64;
    }
    let (gw2, gm2, gv2) = (t(&w0), t(&m0), t(&v0));
    let wt = nan_filled(&gpu, at);
    // The padding past c_out is the caller's (zeros here, as the trainer allocates it).
    gpu.write(&wt, &vec![0.0f32; at]);
    let ap2 = ap.with_copies(&table);
    let mut prog = Vec::new();
    let copies = Some(&wt);
    layers::adam_update(
        &gpu, &mut prog, &gw2, &gm2, &gv2, &none_a, &gg, &tsteps, &state, &ap2, copies,
    )
    .unwrap();
    run(&gpu, &prog);
    let new_w = read(&gpu, &gw2);
    assert_eq!(new_w, read(&gpu, &gw), "the same weights with copies");
    let got = read(&gpu, &wt);
    for ((offset, c), e) in convs.iter().zip(&table) {
        let mut want = vec![0.0f32; layers::conv2d_wt_len(c)];
        reference::conv2d_transpose_weight(&mut want, &new_w[*offset..offset + c.weight_len()], c);
        let o = e.wt_offset as usize;
        assert_eq!(got[o..o + want.len()], want[..], "copy of {c:?}");
    }
    // SGD keeps the same copies (the shared part).
    let sp = Optimizer {
        momentum: 0.9,
        ..Optimizer::keras(OptimizerKind::Sgd)
    }
    .sgd_params(n)
    .with_copies(&table);
    let (gw3, gm3) = (t(&w0), t(&m0));
    gpu.write(&wt, &vec![0.0f32; at]);
    let mut prog = Vec::new();
    layers::sgd_update(
        &gpu, &mut prog, &gw3, &gm3, &gg, &tsteps, &state, &sp, copies,
    )
    .unwrap();
    run(&gpu, &prog);
    let (new_w, got) = (read(&gpu, &gw3), read(&gpu, &wt));
    for ((offset, c), e) in convs.iter().zip(&table) {
        let mut want = vec![0.0f32; layers::conv2d_wt_len(c)];
        reference::conv2d_transpose_weight(&mut want, &new_w[*offset..offset + c.weight_len()], c);
        let o = e.wt_offset as usize;
        assert_eq!(got[o..o + want.len()], want[..], "sgd: copy of {c:?}");
    }
    let err = layers::adam_update(
        &gpu, &mut prog, &gw2, &gm2, &gv2, &none_a, &gg, &tsteps, &state, &ap2, None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("copies"), "{err}");
}

#[test]
fn launchers_reject_undersized_tensors() {
    let Some(gpu) = gpu() else { return };
    let p = Conv2dParams::new(2, 1, 5, 5, 4, 3, true);
    let small = gpu.zeros("small", 3).unwrap();
    let ok = gpu.zeros("ok", 1000).unwrap();
    let mut prog = Vec::new();
    let scratch = layers::conv2d_scratch(&gpu, &p).unwrap();
    let err =
        layers::conv2d_forward(&gpu, &mut prog, &small, &ok, &ok, &ok, &scratch, &p).unwrap_err();
    assert!(
        err.to_string().contains("conv2d_forward") && err.to_string().contains("out"),
        "{err}"
    );
    // The channel-last kernels read 4 input channels per load: c_in = 1 must be refused.
    let cl = Conv2dParams {
        channel_last: 1,
        ..p
    };
    let err =
        layers::conv2d_forward(&gpu, &mut prog, &ok, &ok, &ok, &ok, &scratch, &cl).unwrap_err();
    assert!(err.to_string().contains("c_in % 4"), "{err}");
    assert!(prog.is_empty());
}

/// The subgroup size is measured, not taken from the adapter's range: it lies in that range, and
/// the subgroup kernels are on exactly when it is at least 8.
#[test]
fn subgroup_size_is_measured() {
    let Some(gpu) = gpu() else { return };
    let size = gpu.probe_subgroup_size().unwrap();
    assert_eq!(size, gpu.subgroup_size);
    assert!(size.is_power_of_two() && size <= 128, "{size}");
    let (lo, hi) = (gpu.info.subgroup_min_size, gpu.info.subgroup_max_size);
    assert!((lo..=hi).contains(&size), "{size} outside {lo}..={hi}");
    assert_eq!(gpu.subgroups, size >= 8);
}

/// The divmod part (index arithmetic by f32 division, shaders/parts/divmod.wgsl) against u32
/// division over its whole stated range: a < 2^31, 0 < b < 2^24, at and around multiples of b,
/// at the ends of the range and where f32 stops holding every integer (2^24).
#[test]
fn divmod_matches_integer_division() {
    let Some(gpu) = gpu() else { return };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut divisors: Vec<u32> = (1..=40).collect();
    divisors.extend([
        49, 64, 81, 97, 169, 576, 676, 784, 1023, 1024, 1025, 65_535, 65_536,
    ]);
    divisors.extend([1 << 22, (1 << 23) + 1, (1 << 24) - 1]);
    divisors.extend((0..60).map(|_| (next() % ((1 << 24) - 1)) as u32 + 1));
    let top = (1u32 << 31) - 1;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for &d in &divisors {
        let mut xs = vec![
            0,
            1,
            d - 1,
            d,
            d + 1,
            top,
            top - 1,
            1 << 22,
            1 << 24,
            (1 << 24) + 1,
        ];
        for _ in 0..40 {
            let k = (next() % (top / d) as u64) as u32;
            xs.extend([k * d, (k * d).saturating_sub(1), k * d + 1]);
        }
        xs.extend((0..20).map(|_| (next() % top as u64) as u32));
        for x in xs.into_iter().filter(|&x| x <= top) {
            a.push(x);
            b.push(d);
        }
    }
    let (ta, tb) = (gpu.upload("a", &a).unwrap(), gpu.upload("b", &b).unwrap());
    let out = gpu.zeros("out", a.len() * 6).unwrap();
    let d = gpu
        .dispatch::<u32>(
            gpu_cnn::shaders::Shader::DivmodCheck,
            "main",
            &[(0, &ta), (1, &tb), (2, &out)],
            None,
            [a.len().div_ceil(64) as u32, 1, 1],
        )
        .unwrap();
    run(&gpu, &[d]);
    let got = read_u32(&gpu, &out);
    for (i, (&x, &d)) in a.iter().zip(&b).enumerate() {
        let want = [x / d, x % d, x / d, x / 2 / d, x / 3 / d, x / 5 / d];
        assert_eq!(got[6 * i..6 * i + 6], want, "a {x} b {d}");
    }
}

/// The fused pool-backward + conv-backward pass against the reference composition
/// (maxpool2d_backward, then conv2d_backward), and bit for bit against the two unfused GPU
/// passes, in every kernel variant: pools that leave rows and columns uncovered, pools with
/// gaps, pixel counts that are and are not multiples of 4, ties in the pool windows.
#[test]
fn conv2d_backward_pooled_matches_reference_and_the_unfused_passes() {
    let Some(mut gpu) = gpu() else { return };
    // (batch, c_in, h, w, c_out, k, pool size, pool stride)
    for (si, &(n, c, h, w, oc, k, ps, pst)) in [
        (3, 1, 11, 9, 5, 3, 2, 2),
        (2, 4, 8, 9, 6, 2, 2, 3),
        (2, 8, 9, 9, 7, 3, 3, 3),
        (2, 3, 6, 7, 9, 3, 2, 2),
        // Without the input gradient these take the weight pass from the winners
        // (Conv2dPooledParams::weight_from_winners): 10, 5 and 9 weight columns, a gap between
        // windows, 17 and 20 channels (a partly used second group of 16).
        (3, 1, 11, 9, 17, 3, 2, 2),
        (2, 1, 9, 10, 6, 2, 2, 3),
        (2, 2, 8, 7, 20, 2, 2, 2),
    ]
    .iter()
    .enumerate()
    {
        for relu in [false, true] {
            let p0 = Conv2dParams {
                chunk: 29,
                ..Conv2dParams::new(n, c, h, w, oc, k, relu)
            };
            for (sg, p) in conv_variants(&gpu, p0) {
                gpu.subgroups = sg;
                let pool = Maxpool2dParams::new(n, oc, p.h_out as usize, p.w_out as usize, ps, pst);
                let pp = Conv2dPooledParams::new(p, &pool);
                assert!(Conv2dPooledParams::fits(&p, &pool));
                let seed = 40 + si as u64;
                let inp = rand_vec(seed, p.inp_len(), -1.0, 1.0);
                let wt = rand_vec(seed + 1, p.weight_len(), -0.5, 0.5);
                let b = rand_vec(seed + 2, oc, -0.3, 0.3);
                let dpool = rand_vec(seed + 3, pool.out_len(), -1.0, 1.0);
                let mut out = vec![0.0; p.out_len()];
                reference::conv2d_forward(&mut out, &inp, &wt, &b, &p);
                // Ties, as after a ReLU: half-steps.
                let out: Vec<f32> = out.iter().map(|v| (v * 2.0).round() / 2.0).collect();
                let (mut pooled, mut am) = (vec![0.0; pool.out_len()], vec![0u32; pool.out_len()]);
                reference::maxpool2d_forward(&mut pooled, &mut am, &out, &pool);
                let (mut dinp, mut dw, mut db) =
                    (vec![0.0; p.inp_len()], vec![0.0; wt.len()], vec![0.0; oc]);
                reference::conv2d_backward_pooled(
                    Some(&mut dinp),
                    &mut dw,
                    &mut db,
                    &pooled,
                    &am,
                    &dpool,
                    &inp,
                    &wt,
                    &pp,
                );
                let t = |d: &[f32]| gpu.upload("t", d).unwrap();
                let (ti, tw, tb, to, tdp) = (t(&inp), t(&wt), t(&b), t(&out), t(&dpool));
                let tam = gpu.upload("am", &am).unwrap();
                let tpooled = t(&pooled);
                let scratch = layers::conv2d_scratch(&gpu, &p).unwrap();
                // Without the input gradient (a first conv) with 2x2 windows and few columns,
                // the weight pass reads the pool's winners itself, with no routing pass, in
                // workgroups of 8 or 64 (the same bits).
                for (with_input, wg) in [(true, 64), (false, 8), (false, 64)] {
                    gpu.narrow_workgroup = wg;
                    let results: Vec<Vec<Vec<f32>>> = [true, false]
                        .iter()
                        .map(|&fused| {
                            let (gdinp, gdw, gdb) = (
                                nan_filled(&gpu, dinp.len()),
                                nan_filled(&gpu, dw.len()),
                                nan_filled(&gpu, oc),
                            );
                            let gout = gpu.zeros("out", p.out_len()).unwrap();
                            let di = with_input.then_some(&gdinp);
                            let mut prog = Vec::new();
                            layers::conv2d_forward(
                                &gpu, &mut prog, &gout, &ti, &tw, &tb, &scratch, &p,
                            )
                            .unwrap();
                            if fused {
                                layers::conv2d_backward_pooled(
                                    &gpu, &mut prog, di, &gdw, &gdb, &tpooled, &tam, &tdp, &ti,
                                    &tw, &scratch, &pp,
                                )
                                .unwrap();
                                let winners = !with_input && pp.weight_from_winners();
                                assert_eq!(
                                    prog.iter().any(|d| d.label.ends_with("::backward_weight")
                                        && d.label.starts_with("conv2d_backward_pooled")),
                                    winners,
                                    "{pp:?}"
                                );
                            } else {
                                let dout = nan_filled(&gpu, p.out_len());
                                layers::maxpool2d_backward(
                                    &gpu, &mut prog, &dout, &tam, &tdp, &pool,
                                )
                                .unwrap();
                                layers::conv2d_backward(
                                    &gpu, &mut prog, di, &gdw, &gdb, &to, &dout, &ti, &tw,
                                    &scratch, &p,
                                )
                                .unwrap();
                            }
                            run(&gpu, &prog);
                            vec![read(&gpu, &gdinp), read(&gpu, &gdw), read(&gpu, &gdb)]
                        })
                        .collect();
                    let what = format!("subgroups {sg} input {with_input} wg {wg} {pp:?}");
                    if with_input {
                        assert_close(&format!("pooled dinp {what}"), &results[0][0], &dinp, PASS);
                    }
                    assert_close(&format!("pooled dweight {what}"), &results[0][1], &dw, PASS);
                    assert_close(&format!("pooled dbias {what}"), &results[0][2], &db, PASS);
                    // (dinp untouched, NaN, without the input gradient.)
                    let from = usize::from(!with_input);
                    assert_eq!(
                        results[0][from..],
                        results[1][from..],
                        "fused against unfused, {what}"
                    );
                }
            }
        }
    }
    // Overlapping windows do not fuse.
    let p = Conv2dParams::new(1, 1, 6, 6, 2, 3, true);
    let pool = Maxpool2dParams::new(1, 2, 4, 4, 3, 1);
    assert!(!Conv2dPooledParams::fits(&p, &pool));
}

/// The fused conv + bias + ReLU + 2x2 max-pool forward pass against the reference composition
/// (conv2d_forward, then maxpool2d_forward), and bit for bit against the two unfused GPU passes,
/// in every kernel variant: odd conv outputs (a last row and column in no window), pool cell
/// counts that are odd (a half-used last tile), channel counts that are not multiples of 8 or
/// 16, ties (the zeros after a ReLU) that must keep the first winner.
#[test]
fn conv2d_forward_pooled_matches_reference_and_the_unfused_passes() {
    let Some(mut gpu) = gpu() else { return };
    // (batch, c_in, h, w, c_out, k)
    for (si, &(n, c, h, w, oc, k)) in [
        (3, 1, 11, 9, 5, 3),
        (2, 4, 8, 9, 6, 2),
        (1, 8, 9, 9, 17, 3),
        (2, 3, 6, 7, 9, 3),
        (5, 4, 4, 4, 20, 1),
        (2, 3, 7, 6, 30, 3),
        (2, 1, 9, 8, 12, 3),
    ]
    .iter()
    .enumerate()
    {
        for relu in [false, true] {
            // The subgroup kernel for any c_in (main_blocks) with 1, 2 and 4 blocks of 8
            // channels (30 channels fill 4 blocks partly).
            let mut variants = Vec::new();
            for (sg, p) in conv_variants(&gpu, Conv2dParams::new(n, c, h, w, oc, k, relu)) {
                let blocks = if sg && p.channel_last == 0 {
                    vec![1, 2, 4]
                } else {
                    vec![1]
                };
                variants.extend(blocks.into_iter().map(|b| (sg, p, b)));
            }
            for (sg, p, blocks) in variants {
                gpu.subgroups = sg;
                gpu.tile_blocks = blocks;
                let pool = Maxpool2dParams::new(n, oc, p.h_out as usize, p.w_out as usize, 2, 2);
                let pp = Conv2dPooledParams::new(p, &pool);
                assert!(Conv2dPooledParams::fits_forward(&p, &pool));
                let seed = 70 + si as u64;
                let inp = rand_vec(seed, p.inp_len(), -1.0, 1.0);
                let wt = rand_vec(seed + 1, p.weight_len(), -0.5, 0.5);
                let b = rand_vec(seed + 2, oc, -0.3, 0.3);
                let (mut pooled, mut am) = (vec![0.0; pp.pool_len()], vec![0u32; pp.pool_len()]);
                reference::conv2d_forward_pooled(&mut pooled, &mut am, &inp, &wt, &b, &pp);
                if relu {
                    assert!(pooled.contains(&0.0), "a window of ReLU zeros: a tie");
                }
                let t = |d: &[f32]| gpu.upload("t", d).unwrap();
                let (ti, tw, tb) = (t(&inp), t(&wt), t(&b));
                let scratch = layers::conv2d_scratch(&gpu, &p).unwrap();
                let results: Vec<(Vec<f32>, Vec<u32>)> = [true, false]
                    .iter()
                    .map(|&fused| {
                        let (gp, gam) = (
                            nan_filled(&gpu, pp.pool_len()),
                            gpu.zeros("am", pp.pool_len()).unwrap(),
                        );
                        let mut prog = Vec::new();
                        if fused {
                            layers::conv2d_forward_pooled(
                                &gpu, &mut prog, &gp, &gam, &ti, &tw, &tb, &scratch, &pp,
                            )
                            .unwrap();
                            let label = &prog.last().unwrap().label;
                            assert_eq!(
                                label.contains("main_blocks"),
                                sg && p.channel_last == 0,
                                "{label}"
                            );
                        } else {
                            let gout = nan_filled(&gpu, p.out_len());
                            layers::conv2d_forward(
                                &gpu, &mut prog, &gout, &ti, &tw, &tb, &scratch, &p,
                            )
                            .unwrap();
                            layers::maxpool2d_forward(&gpu, &mut prog, &gp, &gam, &gout, &pool)
                                .unwrap();
                        }
                        run(&gpu, &prog);
                        (read(&gpu, &gp), read_u32(&gpu, &gam))
                    })
                    .collect();
                let what = format!("subgroups {sg}, {blocks} blocks, {pp:?}");
                assert_close(&format!("pooled {what}"), &results[0].0, &pooled, PASS);
                assert_eq!(results[0], results[1], "fused against unfused, {what}");
                // With whole vec4s of channels, the pass can also write its output channel-last
                // for a next conv (scratch.xt_next): the same outputs, and the copy holds them.
                if oc % 4 == 0 {
                    let mut linked = layers::conv2d_scratch(&gpu, &p).unwrap();
                    let xt = nan_filled(&gpu, pp.pool_len());
                    linked.xt_next = Some(xt.clone());
                    let (gp, gam) = (
                        nan_filled(&gpu, pp.pool_len()),
                        gpu.zeros("am", pp.pool_len()).unwrap(),
                    );
                    let mut prog = Vec::new();
                    layers::conv2d_forward_pooled(
                        &gpu, &mut prog, &gp, &gam, &ti, &tw, &tb, &linked, &pp,
                    )
                    .unwrap();
                    run(&gpu, &prog);
                    assert_eq!(
                        (read(&gpu, &gp), read_u32(&gpu, &gam)),
                        results[0],
                        "{what}"
                    );
                    let pool_plane = pp.pool_len() / (n * oc);
                    let want: Vec<f32> = (0..pp.pool_len())
                        .map(|i| {
                            let (cell, c) = (i / oc, i % oc);
                            let (img, at) = (cell / pool_plane, cell % pool_plane);
                            results[0].0[(img * oc + c) * pool_plane + at]
                        })
                        .collect();
                    assert_eq!(read(&gpu, &xt), want, "channel-last copy, {what}");
                }
                // The reference's winners, wherever the window's best value leads the next by
                // more than rounding (exact ties included: both keep the first).
                let mut out = vec![0.0f32; p.out_len()];
                reference::conv2d_forward(&mut out, &inp, &wt, &b, &p);
                let (plane, pool_plane) = (p.out_len() / (n * oc), pp.pool_len() / (n * oc));
                let mut checked = 0;
                for (o, &a) in am.iter().enumerate() {
                    let base = (o / pool_plane) * plane;
                    let r = o % pool_plane;
                    let at0 = (r / pp.w_pool as usize) * 2 * p.w_out as usize
                        + (r % pp.w_pool as usize) * 2;
                    let win = [0, 1, p.w_out as usize, p.w_out as usize + 1].map(|d| at0 + d);
                    let best = out[base + a as usize];
                    let close = win
                        .iter()
                        .filter(|&&x| x != a as usize && (out[base + x] - best).abs() <= 1e-5)
                        .count();
                    if close == 0 || pooled[o] == 0.0 {
                        assert_eq!(results[0].1[o], a, "winner of cell {o}, {what}");
                        checked += 1;
                    }
                }
                assert!(
                    checked * 10 > am.len() * 9,
                    "{checked} of {} cells",
                    am.len()
                );
            }
        }
    }
    // Other windows do not fuse into the forward pass (the backward pass takes disjoint ones).
    let p = Conv2dParams::new(1, 1, 8, 8, 2, 3, true);
    for (size, stride) in [(3, 3), (2, 3), (3, 1)] {
        let pool = Maxpool2dParams::new(1, 2, 6, 6, size, stride);
        assert!(!Conv2dPooledParams::fits_forward(&p, &pool));
    }
}

/// Two dense layers' forward passes in one dispatch against the reference composition, and bit
/// for bit against two dense_forward dispatches (either kernel variant): a batch that is not a
/// multiple of the 8-row tile, hidden and output widths that are not multiples of 8, widths up
/// to the 512 one workgroup takes; with and without the ReLUs.
#[test]
fn dense_forward_chain_matches_reference_and_the_unfused_passes() {
    let Some(mut gpu) = gpu() else { return };
    // (subgroups, most blocks of 8 rows per workgroup of the subgroup kernels, invocations per
    // workgroup of dense_forward); a workgroup per thread is not asked for, so the blocks are
    // used wherever the hidden rows fit.
    let variants = if gpu.subgroups {
        vec![
            (false, 1, 64),
            (false, 1, 8),
            (true, 1, 64),
            (true, 2, 8),
            (true, 4, 8),
            (true, 4, 64),
        ]
    } else {
        vec![(false, 1, 64), (false, 1, 8)]
    };
    gpu.cpu_threads = 1;
    // Batch 40 fills one workgroup of 4 blocks and part of a second; 11 rows part of one.
    for (si, &(n, i, m, o)) in [
        (3, 37, 13, 5),
        (11, 70, 19, 10),
        (40, 70, 100, 10),
        (9, 300, 260, 7),
        (2, 5, 512, 512),
    ]
    .iter()
    .enumerate()
    {
        for relu in [false, true] {
            for &(sg, rb, wg) in &variants {
                gpu.subgroups = sg;
                gpu.tile_blocks = rb;
                gpu.narrow_workgroup = wg;
                let p = DenseChainParams {
                    first: DenseParams::new(n, i, m, relu),
                    second: DenseParams::new(n, m, o, !relu),
                };
                let seed = 90 + si as u64;
                let inp = rand_vec(seed, n * i, -1.0, 1.0);
                let (w1, b1) = (
                    rand_vec(seed + 1, m * i, -0.5, 0.5),
                    rand_vec(seed + 2, m, -0.3, 0.3),
                );
                let (w2, b2) = (
                    rand_vec(seed + 3, o * m, -0.5, 0.5),
                    rand_vec(seed + 4, o, -0.3, 0.3),
                );
                let (mut hid, mut out) = (vec![0.0; n * m], vec![0.0; n * o]);
                reference::dense_forward_chain(&mut hid, &mut out, &inp, &w1, &b1, &w2, &b2, &p);
                let t = |d: &[f32]| gpu.upload("t", d).unwrap();
                let (ti, tw1, tb1, tw2, tb2) = (t(&inp), t(&w1), t(&b1), t(&w2), t(&b2));
                let results: Vec<(Vec<f32>, Vec<f32>)> = [true, false]
                    .iter()
                    .map(|&chained| {
                        let (gh, go) = (nan_filled(&gpu, n * m), nan_filled(&gpu, n * o));
                        let mut prog = Vec::new();
                        if chained {
                            layers::dense_forward_chain(
                                &gpu, &mut prog, &gh, &go, &ti, &tw1, &tb1, &tw2, &tb2, &p,
                            )
                            .unwrap();
                            assert_eq!(prog.len(), 1);
                            assert_eq!(prog[0].label.contains("_subgroup"), sg);
                        } else {
                            layers::dense_forward(&gpu, &mut prog, &gh, &ti, &tw1, &tb1, &p.first)
                                .unwrap();
                            layers::dense_forward(&gpu, &mut prog, &go, &gh, &tw2, &tb2, &p.second)
                                .unwrap();
                        }
                        run(&gpu, &prog);
                        (read(&gpu, &gh), read(&gpu, &go))
                    })
                    .collect();
                let what = format!("subgroups {sg}, up to {rb} blocks, {p:?}");
                assert_close(&format!("chain hid {what}"), &results[0].0, &hid, PASS);
                assert_close(&format!("chain out {what}"), &results[0].1, &out, PASS);
                assert_eq!(results[0], results[1], "chained against unfused, {what}");
            }
        }
    }
    // Too wide, or not reading the first layer: refused.
    let (a, b) = (
        DenseParams::new(4, 10, 513, true),
        DenseParams::new(4, 513, 10, false),
    );
    assert!(!DenseChainParams::fits(&a, &b));
    let (a, b) = (
        DenseParams::new(4, 10, 20, true),
        DenseParams::new(4, 21, 10, false),
    );
    assert!(!DenseChainParams::fits(&a, &b));
}
