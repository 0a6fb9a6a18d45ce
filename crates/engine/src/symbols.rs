//! The functions a compiled C or C++ program takes from shared libraries, and
//! where it calls them: for `banned_functions` / `allowed_functions`.
//!
//! The ELF file is read with the `object` crate: its undefined dynamic symbols
//! are the library functions it uses. Call sites are found on x86_64 by
//! following the two ways code reaches such a function: `call rel32` into a
//! PLT stub (whose `jmp *GOT(%rip)` names the GOT slot), and `call *GOT(%rip)`
//! (`-fno-plt`), each also as a `jmp` (a tail call); the dynamic relocations
//! name each GOT slot's symbol. A call
//! site is then named by the function symbol that contains it and, with debug
//! information (the engine compiles with `-g` for these checks), by its file
//! and line (`addr2line`). Scanning bytes for call opcodes can find a call that
//! is not one (bytes inside another instruction that happen to target a stub);
//! a site is only ever reported for a function the program does import.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind};

/// One library function a program uses, with the places that call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Import {
    /// Its symbol name (`system`, `__printf_chk`).
    pub name: String,
    /// Where it is called: `main (main.c:5)`, or the calling function alone.
    pub sites: Vec<String>,
}

/// The library functions `elf` (the bytes of an ELF file at `path`) imports.
pub(crate) fn imports(path: &Path, elf: &[u8]) -> Result<Vec<Import>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF file: {e}"))?;
    let dynamic: HashMap<usize, String> = file
        .dynamic_symbols()
        .filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty())
        .filter_map(|s| Some((s.index().0, s.name().ok()?.to_string())))
        .collect();
    // GOT slot address -> the function its relocation names.
    let mut got: HashMap<u64, &str> = HashMap::new();
    for (address, relocation) in file.dynamic_relocations().into_iter().flatten() {
        if let RelocationTarget::Symbol(index) = relocation.target()
            && let Some(name) = dynamic.get(&index.0)
        {
            got.insert(address, name);
        }
    }
    let mut calls: BTreeMap<&str, Vec<u64>> =
        dynamic.values().map(|n| (n.as_str(), vec![])).collect();
    if file.architecture() == object::Architecture::X86_64 {
        let stubs = plt_stubs(&file, &got);
        for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
            let name = section.name().unwrap_or("");
            if name.starts_with(".plt") {
                continue;
            }
            let Ok(code) = section.data() else { continue };
            for (at, target) in call_targets(section.address(), code) {
                let callee = stubs.get(&target.stub).or_else(|| got.get(&target.slot));
                if let Some(callee) = callee.and_then(|c| calls.get_mut(c)) {
                    callee.push(at);
                }
            }
        }
    }
    let functions = function_ranges(&file);
    let lines = addr2line::Loader::new(path).ok();
    Ok(calls
        .into_iter()
        .map(|(name, addresses)| Import {
            name: name.to_string(),
            sites: addresses
                .into_iter()
                .map(|at| site(at, &functions, lines.as_ref()))
                .collect(),
        })
        .collect())
}

/// Where a call instruction at `at` leads: a PLT stub, or a GOT slot.
struct CallTarget {
    stub: u64,
    slot: u64,
}

/// The `call`/`jmp rel32` and `call`/`jmp *rel32(%rip)` instructions of `code`.
fn call_targets(base: u64, code: &[u8]) -> impl Iterator<Item = (u64, CallTarget)> + '_ {
    (0..code.len()).filter_map(move |i| {
        let rel = |at: usize| {
            code.get(at..at + 4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
        };
        let at = base + i as u64;
        match code[i] {
            // call rel32, and jmp rel32 (a tail call).
            0xe8 | 0xe9 => Some((
                at,
                CallTarget {
                    stub: at.wrapping_add(5).wrapping_add_signed(rel(i + 1)?),
                    slot: 0,
                },
            )),
            // call *rel32(%rip), and jmp *rel32(%rip) (a tail call).
            0xff if matches!(code.get(i + 1), Some(0x15 | 0x25)) => Some((
                at,
                CallTarget {
                    stub: 0,
                    slot: at.wrapping_add(6).wrapping_add_signed(rel(i + 2)?),
                },
            )),
            _ => None,
        }
    })
}

/// PLT stub address -> the function it jumps to (through `jmp *GOT(%rip)`).
fn plt_stubs<'a>(file: &object::File<'_>, got: &HashMap<u64, &'a str>) -> HashMap<u64, &'a str> {
    let mut stubs = HashMap::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        if !name.starts_with(".plt") {
            continue;
        }
        let Ok(code) = section.data() else { continue };
        let entry = section.align().clamp(8, 16);
        for i in 0..code.len().saturating_sub(5) {
            if code[i] != 0xff || code[i + 1] != 0x25 {
                continue;
            }
            let rel = i32::from_le_bytes([code[i + 2], code[i + 3], code[i + 4], code[i + 5]]);
            let at = section.address() + i as u64;
            let slot = at.wrapping_add(6).wrapping_add_signed(rel as i64);
            if let Some(name) = got.get(&slot) {
                stubs.insert(section.address() + (i as u64 / entry) * entry, *name);
            }
        }
    }
    stubs
}

/// The program's own functions: `(start, end, name)`, sorted by start.
fn function_ranges(file: &object::File<'_>) -> Vec<(u64, u64, String)> {
    let mut functions: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
        .filter_map(|s| {
            Some((
                s.address(),
                s.address() + s.size(),
                s.name().ok()?.to_string(),
            ))
        })
        .collect();
    functions.sort();
    functions
}

/// `caller (file:line)` for a call at `at`, as much of it as is known.
fn site(at: u64, functions: &[(u64, u64, String)], lines: Option<&addr2line::Loader>) -> String {
    let caller = functions
        .iter()
        .find(|(start, end, _)| (*start..*end).contains(&at))
        .map_or("?", |(_, _, name)| name.as_str());
    let place = lines
        .and_then(|l| l.find_location(at).ok().flatten())
        .and_then(|l| Some(format!("{}:{}", l.file?.rsplit('/').next()?, l.line?)));
    match place {
        Some(place) => format!("{caller} ({place})"),
        None => caller.to_string(),
    }
}

/// The names a function is known by in a program's symbols: `__printf_chk`
/// (what `_FORTIFY_SOURCE` makes of `printf`) and `__isoc99_scanf` are
/// `printf` and `scanf`.
pub(crate) fn plain_name(symbol: &str) -> &str {
    let symbol = symbol.split('@').next().unwrap_or(symbol);
    if let Some(inner) = symbol
        .strip_prefix("__")
        .and_then(|s| s.strip_suffix("_chk"))
    {
        return inner;
    }
    for prefix in ["__isoc99_", "__isoc23_"] {
        if let Some(inner) = symbol.strip_prefix(prefix) {
            return inner;
        }
    }
    symbol
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortified_and_iso_names_are_their_plain_functions() {
        assert_eq!(plain_name("__printf_chk"), "printf");
        assert_eq!(plain_name("__isoc99_scanf"), "scanf");
        assert_eq!(plain_name("system"), "system");
        assert_eq!(plain_name("malloc@GLIBC_2.2.5"), "malloc");
    }

    #[test]
    fn a_relative_call_and_a_got_call_are_found_with_their_targets() {
        // call +0x10 at 0x1000; call *0x20(%rip) at 0x1005.
        let code = [0xe8, 0x10, 0, 0, 0, 0xff, 0x15, 0x20, 0, 0, 0];
        let found: Vec<(u64, u64, u64)> = call_targets(0x1000, &code)
            .map(|(at, t)| (at, t.stub, t.slot))
            .collect();
        assert_eq!(found[0], (0x1000, 0x1015, 0));
        assert_eq!(found[1], (0x1005, 0, 0x102b));
    }
}
