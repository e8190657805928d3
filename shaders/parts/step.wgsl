// A step's record, `StepRecord` in src/layers.rs: the first row of its batch in the epoch's
// order, the optimizer's step size, the step number t and the run's seed (dropout's masks), and
// the step's learning rate.
struct Step {
    offset: u32,
    alpha: f32,
    t: u32,
    seed: u32,
    lr: f32,
}
