//! The WGSL composer: a shader file is put together from shared parts when its pipeline is
//! created. Two directives, each alone on its line, and nothing cleverer:
//!
//! - `#include "name"` stands for the text of `shaders/parts/name.wgsl` (parts may include
//!   parts, but not themselves); a part of statements may stand in several functions, a part
//!   that defines something at module scope once (naga rejects the second definition);
//! - `#if FLAG` / `#if !FLAG`, optionally `#else`, then `#endif` keep their lines when the
//!   variant's flags hold `FLAG` (or not), and nest.
//!
//! A file without directives is its own text. Twins that share most of their lines (portable and
//! subgroup variants, fused and unfused passes) are one file with conditional blocks, or files
//! that include the same parts, so they cannot drift apart.

/// A composition error: which file (or part) and line, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError(pub String);

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Composes `source` (named `file` in errors) for a variant with `flags`, taking parts from
/// `part(name)`.
pub fn compose(
    file: &str,
    source: &str,
    flags: &[&str],
    part: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<String, ComposeError> {
    let mut out = String::with_capacity(source.len() * 2);
    compose_into(&mut out, file, source, flags, part, &mut Vec::new())?;
    Ok(out)
}

/// One open `#if`: whether its lines are kept, whether the enclosing block keeps lines, whether
/// `#else` was seen, and the line it opened on.
struct Block {
    keep: bool,
    outer: bool,
    in_else: bool,
    line: usize,
}

fn compose_into(
    out: &mut String,
    file: &str,
    source: &str,
    flags: &[&str],
    part: &dyn Fn(&str) -> Option<&'static str>,
    including: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let mut stack: Vec<Block> = Vec::new();
    let err = |line: usize, msg: String| ComposeError(format!("{file}:{line}: {msg}"));
    for (i, text) in source.lines().enumerate() {
        let n = i + 1;
        let keeping = stack.last().is_none_or(|b| b.keep);
        let directive = text.trim();
        if let Some(cond) = directive.strip_prefix("#if ") {
            let cond = cond.trim();
            let (negated, flag) = match cond.strip_prefix('!') {
                Some(f) => (true, f.trim()),
                None => (false, cond),
            };
            if flag.is_empty() || !flag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(n, format!("`#if {cond}`: expected a flag name")));
            }
            let holds = flags.contains(&flag) != negated;
            stack.push(Block {
                keep: keeping && holds,
                outer: keeping,
                in_else: false,
                line: n,
            });
        } else if directive == "#else" {
            let Some(b) = stack.last_mut() else {
                return Err(err(n, "`#else` without `#if`".into()));
            };
            if b.in_else {
                return Err(err(
                    n,
                    format!("a second `#else` for the `#if` of line {}", b.line),
                ));
            }
            b.in_else = true;
            b.keep = b.outer && !b.keep;
        } else if directive == "#endif" {
            if stack.pop().is_none() {
                return Err(err(n, "`#endif` without `#if`".into()));
            }
        } else if let Some(rest) = directive.strip_prefix("#include ") {
            let name = rest
                .trim()
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .ok_or_else(|| err(n, format!("`#include {rest}`: expected a quoted name")))?;
            if !keeping {
                continue;
            }
            let text = part(name).ok_or_else(|| err(n, format!("no part `{name}`")))?;
            if including.iter().any(|p| p == name) {
                return Err(err(n, format!("part `{name}` includes itself")));
            }
            including.push(name.to_string());
            compose_into(out, &format!("parts/{name}"), text, flags, part, including)?;
            including.pop();
        } else if directive.starts_with('#') {
            return Err(err(n, format!("unknown directive `{directive}`")));
        } else if keeping {
            out.push_str(text);
            out.push('\n');
        }
    }
    match stack.last() {
        Some(b) => Err(err(b.line, "`#if` without `#endif`".into())),
        None => Ok(()),
    }
}
