// Dropout's shapes, `DropoutParams` in src/layers.rs. Its masks are drawn with a counter-based
// hash (parts/dropout_hash): value i of step t is kept when
// mix(i ^ mix(t ^ mix(salt ^ mix(seed)))) >> 8 >= threshold.
struct Params {
    len: u32,
    threshold: u32,
    scale: f32,
    salt: u32,
    training: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
