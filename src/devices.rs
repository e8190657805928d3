//! `gpu-cnn devices`: the adapters wgpu sees, and which kernels each would run.

use crate::gpu::{enumerate_adapters, Gpu};

/// Prints one line per adapter of `backends`.
pub fn print(backends: wgpu::Backends) {
    let adapters = enumerate_adapters(backends);
    if adapters.is_empty() {
        println!("no adapters found (without a GPU: apt-get install mesa-vulkan-drivers, or train with --cpu)");
    }
    for a in adapters {
        let i = a.get_info();
        // Opens the device as training would, subgroup probe included.
        let kernels = match Gpu::from_adapter(a) {
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
    }
}
