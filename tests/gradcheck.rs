//! The CPU reference's backward passes against central finite differences in f64.
//! Each loss is L = sum(out * r) for a fixed random r, so dout = r.

mod common;
use common::*;

use gpu_cnn::layers::{
    Avgpool2dParams, BatchnormParams, Conv2dParams, DenseParams, DropoutParams, Maxpool2dParams,
    Pad2dParams, ReluParams, SoftmaxXentParams, StepRecord, Subsample2dParams,
};
use gpu_cnn::model::{Layer, Model, Shape};
use gpu_cnn::reference::*;

const H: f64 = 1e-6;

fn rand64(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    rand_vec(seed, n, lo, hi)
        .into_iter()
        .map(|x| x as f64)
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central differences of `loss` with respect to every element of `x`.
fn numeric(x: &mut [f64], mut loss: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let x0 = x[i];
            x[i] = x0 + H;
            let lp = loss(x);
            x[i] = x0 - H;
            let lm = loss(x);
            x[i] = x0;
            (lp - lm) / (2.0 * H)
        })
        .collect()
}

/// `net`'s analytic gradients (its `grads` after `gradients`) at a spread of each trainable
/// tensor's weights (every `len / per_tensor`-th), and central differences of `loss` there.
fn sampled_gradients(
    net: &mut CpuNet<f64>,
    model: &Model,
    per_tensor: usize,
    mut loss: impl FnMut(&mut CpuNet<f64>) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let analytic = net.grads.clone();
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for p in model.params.iter().filter(|p| p.trainable) {
        for k in (0..p.len).step_by((p.len / per_tensor).max(1)) {
            let i = p.offset + k;
            let w0 = net.weights[i];
            net.weights[i] = w0 + H;
            let lp = loss(net);
            net.weights[i] = w0 - H;
            let lm = loss(net);
            net.weights[i] = w0;
            got.push(analytic[i]);
            want.push((lp - lm) / (2.0 * H));
        }
    }
    assert!(
        want.iter().filter(|v| v.abs() > 1e-6).count() > want.len() / 2,
        "most checked gradients are non-zero"
    );
    (got, want)
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    for relu in [false, true] {
        let p = Conv2dParams::new(2, 3, 6, 7, 5, 3, relu);
        let mut inp = rand64(1, p.inp_len(), -1.0, 1.0);
        let mut w = rand64(2, p.weight_len(), -0.5, 0.5);
        let mut b = rand64(3, p.c_out as usize, -0.2, 0.2);
        let r = rand64(4, p.out_len(), -1.0, 1.0);
        // Keep pre-activations away from the ReLU kink.
        let mut pre = vec![0.0; p.out_len()];
        conv2d_forward(&mut pre, &inp, &w, &b, &Conv2dParams { relu: 0, ..p });
        assert!(
            pre.iter().all(|v| v.abs() > 1e-4),
            "seeded inputs put a pre-activation at the kink"
        );

        let fwd = |inp: &[f64], w: &[f64], b: &[f64]| {
            let mut out = vec![0.0; p.out_len()];
            conv2d_forward(&mut out, inp, w, b, &p);
            dot(&out, &r)
        };
        let mut out = vec![0.0; p.out_len()];
        conv2d_forward(&mut out, &inp, &w, &b, &p);
        let mut dinp = vec![0.0; p.inp_len()];
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; b.len()]);
        conv2d_backward_input(&mut dinp, &out, &r, &w, &p);
        conv2d_backward_weight(&mut dw, &mut db, &out, &r, &inp, &p);

        let (w0, b0) = (w.clone(), b.clone());
        let ndinp = numeric(&mut inp, |x| fwd(x, &w0, &b0));
        let i0 = inp.clone();
        let ndw = numeric(&mut w, |x| fwd(&i0, x, &b0));
        let ndb = numeric(&mut b, |x| fwd(&i0, &w0, x));
        assert_close_f64(
            &format!("conv2d dinp relu={relu}"),
            &dinp,
            &ndinp,
            GRADCHECK,
        );
        assert_close_f64(&format!("conv2d dweight relu={relu}"), &dw, &ndw, GRADCHECK);
        assert_close_f64(&format!("conv2d dbias relu={relu}"), &db, &ndb, GRADCHECK);
    }
}

#[test]
fn maxpool2d_backward_matches_finite_differences() {
    // 7x9 with size 2 drops the last row and column; size 3 tiles 7x9 unevenly as well.
    for size in [2, 3] {
        let p = Maxpool2dParams::new(2, 3, 7, 9, size, size);
        let mut inp = rand64(10 + size as u64, p.inp_len(), -1.0, 1.0);
        let r = rand64(20, p.out_len(), -1.0, 1.0);
        let fwd = |x: &[f64]| {
            let mut out = vec![0.0; p.out_len()];
            let mut am = vec![0u32; p.out_len()];
            maxpool2d_forward(&mut out, &mut am, x, &p);
            dot(&out, &r)
        };
        let mut out = vec![0.0; p.out_len()];
        let mut am = vec![0u32; p.out_len()];
        maxpool2d_forward(&mut out, &mut am, &inp, &p);
        let mut dinp = vec![f64::NAN; p.inp_len()];
        maxpool2d_backward(&mut dinp, &am, &r, &p);
        let n = numeric(&mut inp, fwd);
        assert_close_f64(&format!("maxpool2d dinp size={size}"), &dinp, &n, GRADCHECK);
        assert!(
            n.iter().filter(|v| **v != 0.0).count() == p.out_len(),
            "every window routes one gradient"
        );
    }
}

#[test]
fn dense_backward_matches_finite_differences() {
    for relu in [false, true] {
        let p = DenseParams::new(3, 17, 6, relu);
        let mut inp = rand64(30, 3 * 17, -1.0, 1.0);
        let mut w = rand64(31, 6 * 17, -0.5, 0.5);
        let mut b = rand64(32, 6, -0.2, 0.2);
        let r = rand64(33, 3 * 6, -1.0, 1.0);
        let mut pre = vec![0.0; 18];
        dense_forward(&mut pre, &inp, &w, &b, &DenseParams { relu: 0, ..p });
        assert!(pre.iter().all(|v| v.abs() > 1e-4));
        let fwd = |inp: &[f64], w: &[f64], b: &[f64]| {
            let mut out = vec![0.0; 18];
            dense_forward(&mut out, inp, w, b, &p);
            dot(&out, &r)
        };
        let mut out = vec![0.0; 18];
        dense_forward(&mut out, &inp, &w, &b, &p);
        let mut dinp = vec![0.0; inp.len()];
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; 6]);
        dense_backward_input(&mut dinp, &out, &r, &w, &p);
        dense_backward_weight(&mut dw, &mut db, &out, &r, &inp, &p);
        let (w0, b0) = (w.clone(), b.clone());
        let nd = numeric(&mut inp, |x| fwd(x, &w0, &b0));
        let i0 = inp.clone();
        let ndw = numeric(&mut w, |x| fwd(&i0, x, &b0));
        let ndb = numeric(&mut b, |x| fwd(&i0, &w0, x));
        assert_close_f64(&format!("dense dinp relu={relu}"), &dinp, &nd, GRADCHECK);
        assert_close_f64(&format!("dense dweight relu={relu}"), &dw, &ndw, GRADCHECK);
        assert_close_f64(&format!("dense dbias relu={relu}"), &db, &ndb, GRADCHECK);
    }
}

#[test]
fn softmax_xent_backward_matches_finite_differences() {
    let p = SoftmaxXentParams::new(5, 7);
    // Large logits check the max subtraction: exp(300) overflows without it.
    let mut logits: Vec<f64> = rand64(40, 35, -3.0, 3.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 9 == 0 { v + 300.0 } else { *v })
        .collect();
    let labels = [0u32, 6, 3, 3, 1];
    let mean_loss = |x: &[f64]| {
        let mut m = [0.0; 2];
        softmax_xent_forward(&mut m, x, &labels, &p);
        m[0] / 5.0
    };
    assert!(mean_loss(&logits).is_finite());
    let mut d = vec![0.0; 35];
    softmax_xent_backward(&mut d, &logits, &labels, &p);
    let n = numeric(&mut logits, mean_loss);
    assert_close_f64("softmax_xent dlogits", &d, &n, GRADCHECK);
}

#[test]
fn softmax_xent_forward_matches_hand_computed_values() {
    // Row 0: logits (0, ln 3): softmax (1/4, 3/4), label 1 -> loss ln(4/3), correct.
    // Row 1: logits (2, 0), label 1 -> loss ln(1 + e^2), wrong.
    let logits = [0.0, 3f64.ln(), 2.0, 0.0];
    let mut m = [0.0; 2];
    softmax_xent_forward(&mut m, &logits, &[1, 1], &SoftmaxXentParams::new(2, 2));
    let want = (4.0f64 / 3.0).ln() + (1.0 + 2f64.exp()).ln();
    assert!((m[0] - want).abs() < 1e-12, "loss {} want {want}", m[0]);
    assert_eq!(m[1], 1.0);
}

#[test]
fn whole_network_gradient_matches_finite_differences() {
    // A small model through CpuNet checks the wiring between passes (flatten, pool routing, ReLU).
    let layers = [
        Layer::conv(3, 3, true),
        Layer::MaxPool2d { size: 2, stride: 2 },
        Layer::conv(4, 2, true),
        Layer::Dense { out: 5, relu: true },
        Layer::Dense {
            out: 4,
            relu: false,
        },
    ];
    let model = Model::new(Shape::new(1, 9, 9), &layers).unwrap();
    let w32 = model.init_glorot(5);
    let batch = 3;
    let x = rand64(50, batch * 81, 0.0, 1.0);
    let y = [1u32, 3, 0];
    let mut net = CpuNet::<f64>::new(&model, &w32, batch);
    net.acts[0][..x.len()].copy_from_slice(&x);
    net.gradients(&y, batch);
    let analytic = net.grads.clone();
    let mut check = Vec::new();
    // Every bias and a spread of weights of each tensor.
    for p in &model.params {
        for k in (0..p.len).step_by((p.len / 7).max(1)) {
            check.push(p.offset + k);
        }
    }
    let mut got = Vec::new();
    let mut want = Vec::new();
    for &i in &check {
        let w0 = net.weights[i];
        let loss_at = |v: f64, net: &mut CpuNet<f64>| {
            net.weights[i] = v;
            net.acts[0][..x.len()].copy_from_slice(&x);
            net.evaluate(&y, batch)[0] / batch as f64
        };
        let lp = loss_at(w0 + H, &mut net);
        let lm = loss_at(w0 - H, &mut net);
        net.weights[i] = w0;
        got.push(analytic[i]);
        want.push((lp - lm) / (2.0 * H));
    }
    assert!(
        want.iter().filter(|v| v.abs() > 1e-6).count() > check.len() / 2,
        "most checked gradients are non-zero"
    );
    assert_close_f64("whole-network gradient", &got, &want, GRADCHECK);
}

#[test]
fn avgpool2d_backward_matches_finite_differences() {
    // Overlapping windows, gaps, and the global window.
    for (kh, kw, stride, h, w) in [(3, 3, 2, 7, 8), (2, 2, 3, 8, 7), (5, 6, 1, 5, 6)] {
        let p = Avgpool2dParams::new(2, 3, h, w, kh, kw, stride);
        let mut inp = rand64(60, p.inp_len(), -1.0, 1.0);
        let r = rand64(61, p.out_len(), -1.0, 1.0);
        let mut dinp = vec![0.0; p.inp_len()];
        avgpool2d_backward(&mut dinp, &r, &p);
        let want = numeric(&mut inp, |x| {
            let mut out = vec![0.0; p.out_len()];
            avgpool2d_forward(&mut out, x, &p);
            dot(&out, &r)
        });
        assert_close_f64(&format!("avgpool2d dinp {p:?}"), &dinp, &want, GRADCHECK);
    }
}

#[test]
fn pad2d_and_subsample2d_backward_match_finite_differences() {
    let p = Pad2dParams::new(2, 3, 5, 4, [1, 0, 2, 1]);
    let mut inp = rand64(68, p.inp_len(), -1.0, 1.0);
    let r = rand64(69, p.out_len(), -1.0, 1.0);
    let mut dinp = vec![0.0; p.inp_len()];
    pad2d_backward(&mut dinp, &r, &p);
    let want = numeric(&mut inp, |x| {
        let mut o = vec![0.0; p.out_len()];
        pad2d_forward(&mut o, x, &p);
        dot(&o, &r)
    });
    assert_close_f64("pad2d dinp", &dinp, &want, GRADCHECK);
    let p = Subsample2dParams::new(2, 3, 7, 5, 3);
    let mut inp = rand64(70, p.inp_len(), -1.0, 1.0);
    let r = rand64(71, p.out_len(), -1.0, 1.0);
    let mut dinp = vec![0.0; p.inp_len()];
    subsample2d_backward(&mut dinp, &r, &p);
    let want = numeric(&mut inp, |x| {
        let mut o = vec![0.0; p.out_len()];
        subsample2d_forward(&mut o, x, &p);
        dot(&o, &r)
    });
    assert_close_f64("subsample2d dinp", &dinp, &want, GRADCHECK);
}

#[test]
fn relu_and_dropout_backward_match_finite_differences() {
    let n = 500;
    // Away from the kink at 0.
    let mut inp: Vec<f64> = rand64(62, n, -1.0, 1.0)
        .into_iter()
        .map(|v| if v.abs() < 1e-3 { 0.5 } else { v })
        .collect();
    let r = rand64(63, n, -1.0, 1.0);
    let p = ReluParams::new(n);
    let mut out = vec![0.0; n];
    relu_forward(&mut out, &inp, &p);
    let mut dinp = vec![0.0; n];
    relu_backward(&mut dinp, &out, &r, &p);
    let want = numeric(&mut inp, |x| {
        let mut o = vec![0.0; n];
        relu_forward(&mut o, x, &p);
        dot(&o, &r)
    });
    assert_close_f64("relu dinp", &dinp, &want, GRADCHECK);

    let p = DropoutParams::new(1, n, 0.3, 2, true);
    let step = StepRecord {
        t: 9,
        seed: 5,
        ..Default::default()
    };
    dropout_backward(&mut dinp, &r, &step, &p);
    let want = numeric(&mut inp, |x| {
        let mut o = vec![0.0; n];
        dropout_forward(&mut o, x, &step, &p);
        dot(&o, &r)
    });
    assert_close_f64("dropout dinp", &dinp, &want, GRADCHECK);
    assert!(dinp.iter().any(|&d| d == 0.0) && dinp.iter().any(|&d| d != 0.0));
}

#[test]
fn batchnorm_backward_matches_finite_differences() {
    for (n, c, hw) in [(3, 4, 5), (4, 3, 1)] {
        let p = BatchnormParams::new(n, c, hw, 0.99, 1e-3, true);
        let mut inp = rand64(64, p.len(), -1.0, 2.0);
        let mut gamma = rand64(65, c, 0.5, 1.5);
        let mut beta = rand64(66, c, -0.5, 0.5);
        let r = rand64(67, p.len(), -1.0, 1.0);
        let fwd = |inp: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut out, mut saved) = (vec![0.0; p.len()], vec![0.0; 2 * c]);
            let (mut mm, mut mv) = (vec![0.0; c], vec![1.0; c]);
            batchnorm_forward(&mut out, &mut saved, &mut mm, &mut mv, inp, gamma, beta, &p);
            (dot(&out, &r), saved)
        };
        let (_, saved) = fwd(&inp, &gamma, &beta);
        let (mut dinp, mut dg, mut db) = (vec![0.0; p.len()], vec![0.0; c], vec![0.0; c]);
        batchnorm_backward(
            Some(&mut dinp),
            &mut dg,
            &mut db,
            &r,
            &inp,
            &saved,
            &gamma,
            &p,
        );
        let (g0, b0) = (gamma.clone(), beta.clone());
        let ndinp = numeric(&mut inp, |x| fwd(x, &g0, &b0).0);
        let i0 = inp.clone();
        let ndg = numeric(&mut gamma, |x| fwd(&i0, x, &b0).0);
        let ndb = numeric(&mut beta, |x| fwd(&i0, &g0, x).0);
        assert_close_f64(&format!("batchnorm dinp {p:?}"), &dinp, &ndinp, GRADCHECK);
        assert_close_f64(&format!("batchnorm dgamma {p:?}"), &dg, &ndg, GRADCHECK);
        assert_close_f64(&format!("batchnorm dbeta {p:?}"), &db, &ndb, GRADCHECK);
    }
}

/// Every new layer kind wired together through CpuNet in training mode (batch statistics, a
/// fixed dropout mask): the gradient of every trainable tensor against finite differences, and
/// zero gradients for the moving statistics.
#[test]
fn whole_network_with_every_layer_kind_matches_finite_differences() {
    let model = gpu_cnn::spec::build(
        "conv2d(4,3,padding=same,use_bias=false) batchnorm relu conv2d(4,3,relu,stride=2,padding=same) avgpool(2,stride=1) dropout(0.25) conv2d(5,2,relu,stride=2) globalavgpool dense(6,relu) batchnorm dropout(0.5) dense(4)",
        Shape::new(2, 11, 9),
        4,
        false,
    )
    .unwrap();
    let w32 = model.init_glorot(7);
    let batch = 3;
    let x = rand64(70, batch * model.input.len(), 0.0, 1.0);
    let y = [1u32, 3, 0];
    let mut net = CpuNet::<f64>::new(&model, &w32, batch);
    net.dropout = StepRecord {
        t: 4,
        seed: 11,
        ..Default::default()
    };
    let train_loss = |net: &mut CpuNet<f64>| {
        net.acts[0][..x.len()].copy_from_slice(&x);
        net.forward_mode(batch, true);
        let mut m = [0.0; 2];
        let xp = SoftmaxXentParams::new(batch, 4);
        softmax_xent_forward(&mut m, net.acts.last().unwrap(), &y, &xp);
        m[0] / batch as f64
    };
    net.acts[0][..x.len()].copy_from_slice(&x);
    net.gradients(&y, batch);
    for p in model.params.iter().filter(|p| !p.trainable) {
        let g = &net.grads[p.offset..p.offset + p.len];
        assert!(g.iter().all(|&g| g == 0.0), "{}", p.name);
    }
    let (got, want) = sampled_gradients(&mut net, &model, 5, train_loss);
    assert_close_f64("every-layer network gradient", &got, &want, GRADCHECK);
}

#[test]
fn add_and_concatenate_backward_match_finite_differences() {
    use gpu_cnn::layers::{AddParams, ConcatenateParams};
    // Add: L = sum((a + b + c) * r); each input's gradient is r.
    let p = AddParams::new(2, 15);
    let n = p.len as usize;
    let r = rand64(60, n, -1.0, 1.0);
    let mut a = rand64(61, n, -1.0, 1.0);
    let (b, c) = (rand64(62, n, -1.0, 1.0), rand64(63, n, -1.0, 1.0));
    let fwd = |a: &[f64]| {
        let mut out = vec![0.0; n];
        add_forward(&mut out, a, &b, &p);
        add_forward_into(&mut out, &c, &p);
        dot(&out, &r)
    };
    let mut da = vec![f64::NAN; n];
    add_backward(&mut da, &r, &p);
    assert_close_f64("add da", &da, &numeric(&mut a, fwd), GRADCHECK);
    // Concatenate: 3 + 2 channels of 4x5 planes; each input's gradient is its channels of r.
    let (x, y) = (Shape::new(3, 4, 5), Shape::new(2, 4, 5));
    let out_shape = Shape::new(5, 4, 5);
    let batch = 2;
    let (px, py) = (
        ConcatenateParams::new(batch, x, out_shape, 0),
        ConcatenateParams::new(batch, y, out_shape, 3),
    );
    let r = rand64(64, batch * out_shape.len(), -1.0, 1.0);
    let mut xs = rand64(65, batch * x.len(), -1.0, 1.0);
    let mut ys = rand64(66, batch * y.len(), -1.0, 1.0);
    let fwd = |xs: &[f64], ys: &[f64]| {
        let mut out = vec![f64::NAN; batch * out_shape.len()];
        concatenate_forward(&mut out, xs, &px);
        concatenate_forward(&mut out, ys, &py);
        assert!(out.iter().all(|v| v.is_finite()), "every output written");
        dot(&out, &r)
    };
    let (mut dx, mut dy) = (vec![0.0; xs.len()], vec![0.0; ys.len()]);
    concatenate_backward(&mut dx, &r, &px);
    concatenate_backward(&mut dy, &r, &py);
    let y0 = ys.clone();
    let ndx = numeric(&mut xs, |v| fwd(v, &y0));
    let x0 = xs.clone();
    let ndy = numeric(&mut ys, |v| fwd(&x0, v));
    assert_close_f64("concatenate dx", &dx, &ndx, GRADCHECK);
    assert_close_f64("concatenate dy", &dy, &ndy, GRADCHECK);
    // Image 1's second input sits after image 1's first: channel 3 of image 1.
    assert_eq!(dy[y.len()], r[out_shape.len() + 3 * 20]);
}

/// A graph through CpuNet: a tensor read by a conv and an Add (a residual block), one read by
/// a conv and a Concatenate, and a three-input Add, against finite differences of the loss:
/// the gradient sums of `plan::GradientSlots` and the joins' wiring.
#[test]
fn a_residual_network_gradient_matches_finite_differences() {
    let text = "conv2d(3,3,relu,padding=same) as(a) conv2d(3,3,padding=same) as(b) add(a) relu as(c) \
                conv2d(2,3,relu,padding=same) concatenate(c) as(d) conv2d(5,1) add(d,d) globalavgpool dense(4)";
    let model = gpu_cnn::spec::build(text, Shape::new(1, 7, 7), 4, false).unwrap();
    let g = gpu_cnn::plan::gradient_slots(&model);
    // a: conv2 and add1; c: conv3 and concat1; d: conv4 and add2 twice.
    assert_eq!(g.extra.len(), 7, "{g:?}");
    let w32 = model.init_glorot(9);
    let batch = 2;
    let x = rand64(70, batch * 49, 0.0, 1.0);
    let y = [1u32, 3];
    let mut net = CpuNet::<f64>::new(&model, &w32, batch);
    net.acts[0][..x.len()].copy_from_slice(&x);
    net.gradients(&y, batch);
    let (got, want) = sampled_gradients(&mut net, &model, 5, |net| {
        net.acts[0][..x.len()].copy_from_slice(&x);
        net.evaluate(&y, batch)[0] / batch as f64
    });
    assert_close_f64("residual network gradient", &got, &want, GRADCHECK);
}

/// The float32 reference (what `--cpu` trains with) against the float64 one on a whole batch of
/// 32 images of 28x28: long sums (a conv's weight gradient, batch norm's statistics, over
/// 25,088 pixels) are added in chunks as on the GPU, so the gradients stay within 2e-6 of the
/// float64 ones. A plain running sum was 1e-4 to 7e-4 off here.
#[test]
fn float32_gradients_stay_close_to_float64_over_a_whole_batch() {
    let text = "conv2d(8,3,padding=same,use_bias=false) batchnorm relu as(a) \
                conv2d(8,3,padding=same,use_bias=false) batchnorm relu \
                conv2d(8,3,padding=same,use_bias=false) batchnorm add(a) relu globalavgpool dense(10)";
    let model = gpu_cnn::spec::build(text, Shape::new(1, 28, 28), 10, false).unwrap();
    let w = model.init_glorot(12);
    let batch = 32;
    let x = rand_vec(80, batch * 784, 0.0, 1.0);
    let y: Vec<u32> = (0..batch as u32).map(|i| i * 7 % 10).collect();
    let mut exact = CpuNet::<f64>::new(&model, &w, batch);
    exact.acts[0][..x.len()]
        .iter_mut()
        .zip(&x)
        .for_each(|(a, &b)| *a = b as f64);
    exact.gradients(&y, batch);
    let mut single = CpuNet::<f32>::new(&model, &w, batch);
    single.acts[0][..x.len()].copy_from_slice(&x);
    single.gradients(&y, batch);
    for p in model.params.iter().filter(|p| p.trainable) {
        let r = p.offset..p.offset + p.len;
        let worst = single.grads[r.clone()]
            .iter()
            .zip(&exact.grads[r])
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 2e-6, "{}: {worst:e}", p.name);
    }
}
