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

/// Words of `s` that could be identifiers.
fn idents(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Subgroup operations must run in workgroup-uniform control flow (WGSL's uniformity rules,
/// which Tint enforces and naga does not): in every entry point of a `*_subgroup.wgsl` file, an
/// early `return` may only depend on values derived from `workgroup_id`, `num_workgroups` and
/// the uniforms, never on `global_invocation_id`, `local_invocation_*`, the subgroup lane, or a
/// subgroup vote. A textual check: `let` chains carry the taint.
#[test]
fn subgroup_kernels_return_only_on_workgroup_uniform_conditions() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for s in Shader::ALL.iter().filter(|s| s.needs_subgroups()) {
        let src = s.source();
        let mut rest = src;
        while let Some(at) = rest.find("@compute") {
            let after = &rest[at..];
            let name = after
                .split("fn ")
                .nth(1)
                .and_then(|x| x.split('(').next())
                .unwrap_or("?")
                .to_string();
            // The parameter list and the body, up to the matching brace.
            let open = after.find('{').expect("entry body");
            let params = &after[..open];
            let mut depth = 0;
            let mut end = open;
            for (i, c) in after[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            // The body without comments, one statement per `;`.
            let body: String = after[open + 1..end]
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            // Entry points that take the subgroup lane are the ones using subgroup operations.
            let uses_subgroups = params.contains("subgroup_invocation_id");
            let mut tainted: Vec<String> = Vec::new();
            for p in params.split(',') {
                let non_uniform = [
                    "global_invocation_id",
                    "local_invocation_id",
                    "local_invocation_index",
                    "subgroup_invocation_id",
                ];
                if non_uniform.iter().any(|b| p.contains(b)) {
                    if let Some(n) = p.rsplit(')').next().and_then(|x| x.split(':').next()) {
                        tainted.push(n.trim().to_string());
                    }
                }
            }
            for stmt in body.split(';') {
                let stmt = stmt.trim();
                let decl = stmt.rsplit('\n').next().unwrap_or("").trim();
                if let Some(rest) = decl
                    .strip_prefix("let ")
                    .or_else(|| decl.strip_prefix("var "))
                {
                    if let Some((lhs, rhs)) = rest.split_once('=') {
                        let lhs = lhs.split(':').next().unwrap_or("").trim().to_string();
                        if idents(rhs).iter().any(|w| tainted.iter().any(|t| t == w)) {
                            tainted.push(lhs);
                        }
                    }
                }
                if let Some(cond) = stmt.strip_prefix("if (") {
                    let cond = cond.split(") {").next().unwrap_or("");
                    let returns = stmt.contains("return");
                    let bad: Vec<&str> = idents(cond)
                        .into_iter()
                        .filter(|w| tainted.iter().any(|t| t == w) || w.starts_with("subgroup"))
                        .collect();
                    checked += uses_subgroups as usize;
                    if uses_subgroups && returns && !bad.is_empty() {
                        problems.push(format!(
                            "{}::{name}: `return` under `if ({cond})`, which depends on {bad:?}",
                            s.name()
                        ));
                    }
                }
            }
            rest = &after[end..];
        }
    }
    // The five subgroup entry points each have a guarded return.
    assert!(
        checked >= 5,
        "only {checked} conditions checked: the parser lost its way"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
