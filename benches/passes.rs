//! Criterion benchmarks of the seed model's GPU passes (batch 32) and of a whole training step.
//! Each pass is first checked against the CPU reference on the same inputs; a wrong kernel fails
//! here instead of being timed. One iteration records 10 copies of the pass in one submit and
//! waits for them. Run: `cargo bench` (set XDG_RUNTIME_DIR on lavapipe).

use criterion::{criterion_group, criterion_main, Criterion};

use gpu_cnn::gpu::trainer::GpuTrainer;
use gpu_cnn::gpu::{layers, AdapterOptions, Dispatch, Gpu, Tensor};
use gpu_cnn::layers::{Conv2dParams, DenseParams, Maxpool2dParams, Optimizer};
use gpu_cnn::model::Model;
use gpu_cnn::reference::{self, CpuNet};
use gpu_cnn::rng::Rng;

const BATCH: usize = 32;
const COPIES: usize = 10;

fn rand(seed: u64, n: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.uniform(-1.0, 1.0) as f32).collect()
}

/// Panics unless |got - want| <= 1e-4 * max(|want|) everywhere: at these sizes (sums of up to
/// 21,632 random products) f32 rounding is relative to the tensor's scale, not to each element.
fn check(what: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}: element {i}: gpu {g} reference {w} (scale {scale})"
        );
    }
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    gpu.read::<f32>(&[t]).expect("readback").remove(0)
}

fn time(c: &mut Criterion, gpu: &Gpu, name: &str, prog: &[Dispatch]) {
    let copies: Vec<&Dispatch> = (0..COPIES).flat_map(|_| prog.iter()).collect();
    c.bench_function(&format!("{name} x{COPIES}"), |b| {
        b.iter(|| {
            gpu.run(&copies).expect("submit");
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .expect("wait");
        })
    });
}

fn conv(c: &mut Criterion, gpu: &Gpu, name: &str, p: Conv2dParams) {
    // The kernels training uses on this device (channel-last where it applies).
    let p = layers::conv2d_select(gpu, p);
    let (inp, w, b) = (
        rand(1, p.inp_len()),
        rand(2, p.weight_len()),
        rand(3, p.c_out as usize),
    );
    let dout = rand(4, p.out_len());
    let mut out = vec![0.0; p.out_len()];
    reference::conv2d_forward(&mut out, &inp, &w, &b, &p);
    let (mut dinp, mut dw, mut db) = (
        vec![0.0; p.inp_len()],
        vec![0.0; w.len()],
        vec![0.0; b.len()],
    );
    reference::conv2d_backward(Some(&mut dinp), &mut dw, &mut db, &out, &dout, &inp, &w, &p);
    let up = |d: &[f32]| gpu.upload(name, d).expect("upload");
    let (ti, tw, tb, tdo) = (up(&inp), up(&w), up(&b), up(&dout));
    let (to, tdi, tdw, tdb) = (
        gpu.zeros(name, out.len()).unwrap(),
        gpu.zeros(name, dinp.len()).unwrap(),
        gpu.zeros(name, dw.len()).unwrap(),
        gpu.zeros(name, db.len()).unwrap(),
    );
    let scratch = layers::conv2d_scratch(gpu, &p).unwrap();
    let mut fwd = Vec::new();
    layers::conv2d_forward(gpu, &mut fwd, &to, &ti, &tw, &tb, &scratch, &p).unwrap();
    let mut bwd = Vec::new();
    layers::conv2d_backward(
        gpu,
        &mut bwd,
        Some(&tdi),
        &tdw,
        &tdb,
        &to,
        &tdo,
        &ti,
        &tw,
        &scratch,
        &p,
    )
    .unwrap();
    gpu.run(&fwd.iter().chain(&bwd).collect::<Vec<_>>())
        .unwrap();
    check(&format!("{name} forward"), &read(gpu, &to), &out);
    check(&format!("{name} dinp"), &read(gpu, &tdi), &dinp);
    check(&format!("{name} dweight"), &read(gpu, &tdw), &dw);
    time(c, gpu, &format!("{name} forward"), &fwd);
    time(c, gpu, &format!("{name} backward"), &bwd);
}

fn pool(c: &mut Criterion, gpu: &Gpu, name: &str, p: Maxpool2dParams) {
    let inp: Vec<f32> = rand(5, p.inp_len())
        .iter()
        .enumerate()
        .map(|(i, v)| v + i as f32 * 1e-4)
        .collect();
    let dout = rand(6, p.out_len());
    let (mut out, mut am) = (vec![0.0; p.out_len()], vec![0u32; p.out_len()]);
    reference::maxpool2d_forward(&mut out, &mut am, &inp, &p);
    let mut dinp = vec![0.0; p.inp_len()];
    reference::maxpool2d_backward(&mut dinp, &am, &dout, &p);
    let (ti, tdo) = (
        gpu.upload(name, &inp).unwrap(),
        gpu.upload(name, &dout).unwrap(),
    );
    let (to, tam, tdi) = (
        gpu.zeros(name, out.len()).unwrap(),
        gpu.zeros(name, am.len()).unwrap(),
        gpu.zeros(name, dinp.len()).unwrap(),
    );
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    layers::maxpool2d_forward(gpu, &mut fwd, &to, &tam, &ti, &p).unwrap();
    layers::maxpool2d_backward(gpu, &mut bwd, &tdi, &tam, &tdo, &p).unwrap();
    gpu.run(&fwd.iter().chain(&bwd).collect::<Vec<_>>())
        .unwrap();
    check(&format!("{name} forward"), &read(gpu, &to), &out);
    check(&format!("{name} backward"), &read(gpu, &tdi), &dinp);
    time(c, gpu, &format!("{name} forward"), &fwd);
    time(c, gpu, &format!("{name} backward"), &bwd);
}

fn dense(c: &mut Criterion, gpu: &Gpu, name: &str, p: DenseParams) {
    let (n, i, o) = (p.batch as usize, p.n_in as usize, p.n_out as usize);
    let (inp, w, b, dout) = (rand(7, n * i), rand(8, o * i), rand(9, o), rand(10, n * o));
    let mut out = vec![0.0; n * o];
    reference::dense_forward(&mut out, &inp, &w, &b, &p);
    let (mut dinp, mut dw, mut db) = (vec![0.0; n * i], vec![0.0; o * i], vec![0.0; o]);
    reference::dense_backward_input(&mut dinp, &out, &dout, &w, &p);
    reference::dense_backward_weight(&mut dw, &mut db, &out, &dout, &inp, &p);
    let up = |d: &[f32]| gpu.upload(name, d).expect("upload");
    let (ti, tw, tb, tdo, to_ref) = (up(&inp), up(&w), up(&b), up(&dout), up(&out));
    let (to, tdi, tdw, tdb) = (
        gpu.zeros(name, out.len()).unwrap(),
        gpu.zeros(name, dinp.len()).unwrap(),
        gpu.zeros(name, dw.len()).unwrap(),
        gpu.zeros(name, o).unwrap(),
    );
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    layers::dense_forward(gpu, &mut fwd, &to, &ti, &tw, &tb, &p).unwrap();
    layers::dense_backward_weight(gpu, &mut bwd, &tdw, &tdb, &to_ref, &tdo, &ti, &p).unwrap();
    layers::dense_backward_input(gpu, &mut bwd, &tdi, &to_ref, &tdo, &tw, &p).unwrap();
    gpu.run(&fwd.iter().chain(&bwd).collect::<Vec<_>>())
        .unwrap();
    check(&format!("{name} forward"), &read(gpu, &to), &out);
    check(&format!("{name} dinp"), &read(gpu, &tdi), &dinp);
    check(&format!("{name} dweight"), &read(gpu, &tdw), &dw);
    time(c, gpu, &format!("{name} forward"), &fwd);
    time(c, gpu, &format!("{name} backward"), &bwd);
}

fn train_step(c: &mut Criterion) {
    let gpu = Gpu::new(&AdapterOptions::default()).expect("a GPU adapter");
    let model = Model::keras_mnist();
    let w0 = model.init_glorot(1);
    let data = gpu_cnn::bench::synthetic(BATCH * 40, 28, 28, 10, 3);
    let adam = Optimizer::default();
    // Check: one step's loss matches the CPU reference.
    let mut cpu = CpuNet::<f32>::new(&model, &w0, BATCH);
    let order: Vec<u32> = (0..data.len() as u32).collect();
    let mut y = vec![0u32; BATCH];
    let gp = gpu_cnn::layers::GatherParams::new(BATCH, 784);
    reference::gather_batch(
        &mut cpu.acts[0],
        &mut y,
        &data.images,
        &data.labels,
        &order,
        0,
        &gp,
    );
    let want = cpu.train_step(&y, BATCH, 1, &adam)[0];
    let mut t = GpuTrainer::new(gpu, &model, &w0, &data, None, BATCH, adam).unwrap();
    t.submit_train(&order, 1).unwrap();
    let got = t.read_train_slots().unwrap()[0];
    check("train step loss", &[got], &[want]);
    c.bench_function(
        &format!("train step x{COPIES} (batch {BATCH}, one submit)"),
        |b| {
            b.iter(|| {
                t.submit_train(&order, COPIES).unwrap();
                t.wait().unwrap();
            })
        },
    );
}

fn seed_model_passes(c: &mut Criterion) {
    let gpu = Gpu::new(&AdapterOptions::default()).expect("a GPU adapter");
    conv(
        c,
        &gpu,
        "conv1",
        Conv2dParams::new(BATCH, 1, 28, 28, 32, 3, true),
    );
    pool(
        c,
        &gpu,
        "pool1",
        Maxpool2dParams::new(BATCH, 32, 26, 26, 2, 2),
    );
    conv(
        c,
        &gpu,
        "conv2",
        Conv2dParams::new(BATCH, 32, 13, 13, 64, 3, true),
    );
    pool(
        c,
        &gpu,
        "pool2",
        Maxpool2dParams::new(BATCH, 64, 11, 11, 2, 2),
    );
    dense(c, &gpu, "fc1", DenseParams::new(BATCH, 1600, 128, true));
    dense(c, &gpu, "fc2", DenseParams::new(BATCH, 128, 10, false));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = seed_model_passes, train_step
}
criterion_main!(benches);
