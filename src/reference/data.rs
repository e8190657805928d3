//! The batch on the CPU: `gather_batch`, as the GPU gathers it.

use super::Real;
use crate::layers::GatherParams;

/// x is (batch, pixels), y is (batch): the rows `indices[offset..offset + batch]` of the dataset,
/// pixels scaled by 1/255.
pub fn gather_batch<T: Real>(
    x: &mut [T],
    y: &mut [u32],
    images: &[u8],
    labels: &[u8],
    indices: &[u32],
    offset: usize,
    p: &GatherParams,
) {
    let (batch, pixels) = (p.batch as usize, p.pixels as usize);
    for b in 0..batch {
        let row = indices[offset + b] as usize;
        for i in 0..pixels {
            x[b * pixels + i] = T::from_f64(images[row * pixels + i] as f64) / T::from_f64(255.0);
        }
        y[b] = labels[row] as u32;
    }
}
