//! `gpu-cnn devices`: the adapters wgpu sees, and which kernels each would run.

use crate::gpu::enumerate_adapters;

/// Prints one line per adapter of `backends`.
pub fn print(backends: wgpu::Backends) {
    let adapters = enumerate_adapters(backends);
    if adapters.is_empty() {
        println!("no adapters found (without a GPU: apt-get install mesa-vulkan-drivers, or train with --cpu)");
    }
    for a in adapters {
        let i = a.get_info();
        // The same test Gpu::from_adapter makes for the subgroup kernels.
        let sub = a.features().contains(wgpu::Features::SUBGROUP) && i.subgroup_min_size >= 8;
        println!(
            "{} | {:?} | {:?} | driver {} {} | {} kernels",
            i.name,
            i.backend,
            i.device_type,
            i.driver,
            i.driver_info,
            if sub { "subgroup" } else { "portable" }
        );
    }
}
