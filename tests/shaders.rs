//! Every shader variant, composed from its file and the shared parts, parses and validates with
//! naga (no GPU needed); the shader table lists exactly the files on disk; the composer's
//! directives work and their mistakes are named.

use gpu_cnn::shaders::{Shader, PARTS};
use gpu_cnn::wgsl::compose;

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

/// The `.wgsl` files of `dir`, sorted, as names without the extension.
fn wgsl_files(dir: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every variant in the table, composed from its file and parts, parses and validates.
#[test]
fn every_composed_shader_validates() {
    let mut errors = Vec::new();
    for s in Shader::ALL {
        let src = s.source().unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        if let Err(e) = validate(s.name(), &src) {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(Shader::ALL.len() >= 33, "{} variants", Shader::ALL.len());
}

/// The table names exactly the files in shaders/ and the parts in shaders/parts/, and embeds
/// them as they are on disk.
#[test]
fn the_table_lists_every_file_and_part_as_on_disk() {
    let mut files: Vec<String> = Shader::ALL.iter().map(|s| s.file().to_string()).collect();
    files.sort();
    files.dedup();
    assert_eq!(
        files,
        wgsl_files("shaders"),
        "src/shaders.rs against shaders/"
    );
    let mut parts: Vec<String> = PARTS.iter().map(|(n, _)| n.to_string()).collect();
    parts.sort();
    assert_eq!(
        parts,
        wgsl_files("shaders/parts"),
        "PARTS against shaders/parts/"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for s in Shader::ALL {
        let disk = std::fs::read_to_string(root.join(format!("{}.wgsl", s.file()))).unwrap();
        assert_eq!(disk, s.file_source(), "{}", s.file());
    }
    for (name, text) in PARTS {
        let disk = std::fs::read_to_string(root.join(format!("parts/{name}.wgsl"))).unwrap();
        assert_eq!(disk, *text, "parts/{name}");
    }
}

/// Each file is used: a variant's flags change its text, so no two variants compose the same.
#[test]
fn variants_differ() {
    let mut seen = std::collections::HashMap::new();
    for s in Shader::ALL {
        if let Some(other) = seen.insert(s.source().unwrap(), s.name()) {
            panic!("{} and {other} compose to the same text", s.name());
        }
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
        let src = s.source().unwrap();
        let mut rest = src.as_str();
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

// The composer (src/wgsl.rs) on made-up parts.

fn test_parts(name: &str) -> Option<&'static str> {
    match name {
        "a" => Some("part a\n#include \"b\"\n"),
        "b" => Some("#if X\npart b with X\n#else\npart b without X\n#endif\n"),
        "loop" => Some("#include \"loop\"\n"),
        _ => None,
    }
}

#[test]
fn includes_and_conditions_compose() {
    let src = "top\n#include \"a\"\n#if !X\nnot X\n#if Y\nY\n#endif\n#endif\nend\n";
    assert_eq!(
        compose("f", src, &["X"], &test_parts).unwrap(),
        "top\npart a\npart b with X\nend\n"
    );
    assert_eq!(
        compose("f", src, &["Y"], &test_parts).unwrap(),
        "top\npart a\npart b without X\nnot X\nY\nend\n"
    );
    assert_eq!(
        compose("f", "plain\n", &[], &test_parts).unwrap(),
        "plain\n"
    );
    // A part of statements may stand twice (in two functions, say).
    assert_eq!(
        compose("f", "#include \"b\"\n#include \"b\"\n", &[], &test_parts).unwrap(),
        "part b without X\npart b without X\n"
    );
}

#[test]
fn mistakes_name_the_file_and_line() {
    let e = |src: &str| compose("f.wgsl", src, &[], &test_parts).unwrap_err().0;
    assert_eq!(e("#if X\nx\n"), "f.wgsl:1: `#if` without `#endif`");
    assert_eq!(e("x\n#endif\n"), "f.wgsl:2: `#endif` without `#if`");
    assert_eq!(e("#else\n"), "f.wgsl:1: `#else` without `#if`");
    assert_eq!(
        e("#if X\n#else\n#else\n#endif\n"),
        "f.wgsl:3: a second `#else` for the `#if` of line 1"
    );
    assert_eq!(e("#include \"nope\"\n"), "f.wgsl:1: no part `nope`");
    assert_eq!(
        e("#include nope\n"),
        "f.wgsl:1: `#include nope`: expected a quoted name"
    );
    assert_eq!(e("#define X\n"), "f.wgsl:1: unknown directive `#define X`");
    assert_eq!(
        e("#if a b\n#endif\n"),
        "f.wgsl:1: `#if a b`: expected a flag name"
    );
    assert_eq!(
        e("#include \"loop\"\n"),
        "parts/loop:1: part `loop` includes itself"
    );
}

#[test]
fn a_skipped_include_is_not_read() {
    let src = "#if X\n#include \"nope\"\n#endif\nok\n";
    assert_eq!(compose("f", src, &[], &test_parts).unwrap(), "ok\n");
}

/// The shaders are composed from shared parts, not kept in sync by hand: under 15 % of the WGSL
/// lines (files and parts) stand in a run of 6 or more code lines (comments and blank lines
/// aside, whitespace trimmed) that is repeated somewhere else.
#[test]
fn repeated_runs_stay_under_15_percent_of_the_shader_lines() {
    const RUN: usize = 6;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in ["", "parts"] {
        for name in wgsl_files(&format!("shaders/{dir}")) {
            let path = root.join(dir).join(format!("{name}.wgsl"));
            let label = format!("{dir}/{name}").trim_start_matches('/').to_string();
            files.push((label, std::fs::read_to_string(path).unwrap()));
        }
    }
    // Per file: (line number, code) of each code line.
    let code: Vec<Vec<(usize, &str)>> = files
        .iter()
        .map(|(_, text)| {
            text.split('\n')
                .enumerate()
                .map(|(i, l)| (i, l.split("//").next().unwrap_or("").trim()))
                .filter(|(_, l)| !l.is_empty())
                .collect()
        })
        .collect();
    let mut runs: std::collections::HashMap<Vec<&str>, Vec<(usize, usize)>> = Default::default();
    for (f, lines) in code.iter().enumerate() {
        for s in 0..lines.len().saturating_sub(RUN - 1) {
            let key = lines[s..s + RUN].iter().map(|(_, l)| *l).collect();
            runs.entry(key).or_default().push((f, s));
        }
    }
    let mut marked = std::collections::HashSet::new();
    for at in runs.values().filter(|at| at.len() > 1) {
        for &(f, s) in at {
            for line in code[f][s].0..=code[f][s + RUN - 1].0 {
                marked.insert((f, line));
            }
        }
    }
    let total: usize = files.iter().map(|(_, t)| t.split('\n').count()).sum();
    let mut per_file = vec![0; files.len()];
    for &(f, _) in &marked {
        per_file[f] += 1;
    }
    let mut worst: Vec<(usize, &str)> = per_file
        .iter()
        .zip(&files)
        .map(|(&n, (name, _))| (n, name.as_str()))
        .filter(|(n, _)| *n > 0)
        .collect();
    worst.sort_unstable_by(|a, b| b.cmp(a));
    assert!(
        marked.len() * 100 < 15 * total,
        "{} of {total} shader lines stand in repeated runs of {RUN}+ lines; most in {:?}",
        marked.len(),
        &worst[..worst.len().min(8)]
    );
}
