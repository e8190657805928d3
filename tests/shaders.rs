//! Every file in shaders/ parses and validates with naga (no GPU needed), and the shader table
//! lists exactly the files on disk.

use gpu_cnn::shaders::Shader;

fn validate(name: &str, src: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse: {}", e.emit_to_string(src)))?;
    // Only the `*_subgroup` variants may use subgroup operations; the portable files must
    // validate without them.
    let caps = if name.trim_end_matches(".wgsl").ends_with("_subgroup") {
        naga::valid::Capabilities::SUBGROUP
    } else {
        naga::valid::Capabilities::empty()
    };
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| format!("{name}: validate: {}", e.emit_to_string(src)))?;
    if module.entry_points.is_empty() {
        return Err(format!("{name}: no entry point"));
    }
    Ok(())
}

#[test]
fn every_shader_file_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 11,
        "expected the 11 pass shaders, found {}",
        files.len()
    );
    let mut errors = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("readable shader");
        if let Err(e) = validate(&f.display().to_string(), &src) {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let mut table: Vec<String> = Shader::ALL
        .iter()
        .map(|s| format!("{}.wgsl", s.name()))
        .collect();
    table.sort();
    let on_disk: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        table, on_disk,
        "src/shaders.rs must list every file in shaders/"
    );
}

#[test]
fn embedded_sources_match_files() {
    for s in Shader::ALL {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("shaders")
            .join(format!("{}.wgsl", s.name()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            s.source(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_broken_shader_is_rejected() {
    // The validator must catch a type error, or the test above proves nothing.
    let src = "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }";
    assert!(validate("broken", src).is_err());
}
