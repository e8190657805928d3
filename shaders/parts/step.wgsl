// A step's record, `StepRecord` in src/layers.rs: the first row of its batch in the epoch's
// order, Adam's step size, Adam's step number t and the run's seed (dropout's masks).
struct Step {
    offset: u32,
    alpha: f32,
    t: u32,
    seed: u32,
}
