//! `gpu-cnn devices`: the adapters wgpu sees, and which kernels each would run.

use crate::gpu::tuning::{ConvBackwardTiling, TuningCache};
use crate::gpu::{enumerate_adapters, Gpu};

/// Prints one line per adapter of `backends`.
pub fn print(backends: wgpu::Backends) {
    let adapters = enumerate_adapters(backends);
    if adapters.is_empty() {
        println!("no adapters found (without a GPU: apt-get install mesa-vulkan-drivers, or train with --cpu)");
    }
    let path = TuningCache::path();
    let cache = path.as_deref().map(TuningCache::load);
    for a in adapters {
        let i = a.get_info();
        // Opens the device as training would, subgroup probe included.
        let gpu = Gpu::from_adapter(a);
        let kernels = match &gpu {
            Ok(g) if g.subgroups => format!("subgroup kernels (subgroups of {})", g.subgroup_size),
            Ok(g) if g.subgroup_size > 0 => format!(
                "portable kernels (subgroups of {}, fewer than 8)",
                g.subgroup_size
            ),
            Ok(_) => "portable kernels (no subgroups)".to_string(),
            Err(e) => format!("unusable: {e}"),
        };
        println!(
            "{} | {:?} | {:?} | driver {} {} | {kernels}",
            i.name, i.backend, i.device_type, i.driver, i.driver_info,
        );
        if let Ok(g) = &gpu {
            let tuned = match &cache {
                Some(Ok(c)) => c.adapters.get(&g.adapter_key()).map_or(0, |m| m.len()),
                _ => 0,
            };
            println!(
                "  conv backward tiling: {} untuned (the {:?} default); {tuned} shape(s) tuned in the cache",
                ConvBackwardTiling::default_for(i.device_type),
                i.device_type
            );
        }
    }
    match (path, cache) {
        (Some(p), Some(Ok(_))) => println!("tuning cache: {}", p.display()),
        (_, Some(Err(e))) => println!("tuning cache: {e}"),
        _ => println!("tuning cache: none (no HOME or XDG_CACHE_HOME)"),
    }
}
