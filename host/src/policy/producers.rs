//! Which language a component was written in, from its `producers`
//! custom sections.
//!
//! Why the host cares: an operator reading "the policy trapped" should
//! also read *what* trapped — a Python policy's exception and a Rust
//! policy's panic call for different people and different fixes — and the
//! cost defaults (`InstanceMode::Auto`) are explained in the same terms.
//! Toolchains record themselves in `producers` sections (field `language`
//! or `processed-by`), in the component and in the core modules it nests:
//! componentize-js writes `language: JavaScript`, rustc `language: Rust`.
//! componentize-py names no language (its runtime's module says Rust), but
//! its modules link against CPython by name (`libpython3.x.so`), which no
//! other toolchain does. Everything is read without compiling anything,
//! and a component that says nothing is simply of no known language.

use wasmparser::{Imports, KnownCustom, Parser, Payload};

/// Whether a core module import names CPython or componentize-py's runtime.
fn links_python(module: &str) -> bool {
    module.starts_with("libpython3") || module.starts_with("libcomponentize_py")
}

/// The language a component's producers name: `Python`, `JavaScript`,
/// `Rust`, another language as it is written there, or `None`.
pub fn language(bytes: &[u8]) -> Option<String> {
    let mut languages: Vec<String> = Vec::new();
    let mut tools: Vec<String> = Vec::new();
    let mut python = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let section = match payload {
            Ok(Payload::CustomSection(section)) => section,
            Ok(Payload::ImportSection(reader)) if !python => {
                python = reader.into_iter().flatten().any(|group| match group {
                    Imports::Single(_, import) => links_python(import.module),
                    Imports::Compact1 { module, .. } | Imports::Compact2 { module, .. } => links_python(module),
                });
                continue;
            }
            _ => continue,
        };
        let KnownCustom::Producers(reader) = section.as_known() else { continue };
        for field in reader.into_iter().flatten() {
            for value in field.values.into_iter().flatten() {
                let name = value.name.to_owned();
                match field.name {
                    "language" => languages.push(name),
                    _ => tools.push(name),
                }
            }
        }
    }
    let named = |needle: &str| tools.iter().chain(&languages).any(|t| t.to_ascii_lowercase().contains(needle));
    if python || named("componentize-py") {
        Some("Python".into())
    } else if named("componentizejs") || named("componentize-js") || named("javascript") {
        Some("JavaScript".into())
    } else {
        languages.into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_that_names_nothing_has_no_language() {
        let component = wit_component::ComponentEncoder::default().module(&wat_module()).and_then(|mut e| e.encode());
        if let Ok(bytes) = component {
            // wit-component records itself as processed-by, not a language.
            assert_eq!(language(&bytes), None);
        }
        assert_eq!(language(b"not wasm"), None);
    }

    fn wat_module() -> Vec<u8> {
        // The smallest core module: magic and version.
        b"\0asm\x01\0\0\0".to_vec()
    }
}
