// Draw k (0 or 1) of image `image` at step `step` of the augmentation layer params.salt: 24 bits
// of the dropout hash, in [0, 1) (`layers::augment::uniform` on the CPU). Needs "dropout_hash".
fn augment_draw(step: Step, image: u32, k: u32) -> f32 {
    let h = mix((image * 2u + k) ^ mix(step.t ^ mix(params.salt ^ mix(step.seed))));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}
