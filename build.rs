//! Build script: the explanations catalog (`src/trace/catalog/<lang>.yaml`, which translators
//! edit) turned into JSON in `OUT_DIR`, which the binary embeds and parses instead. The same
//! data, but parsing 40–60 kB of YAML took about 10 ms on every traced command (twice for a
//! `run`: before and after its re-exec), and JSON takes a seventieth of that. Only the syntax
//! is checked here; the catalog's shape is checked where it is read (`trace::catalog`, whose
//! tests also hold the JSON to the YAML).

fn main() {
    pack_relative_relocations();
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for lang in ["en", "ko"] {
        let src = format!("src/trace/catalog/{lang}.yaml");
        println!("cargo:rerun-if-changed={src}");
        let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {src}: {e}"));
        let value: serde_json::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{src}: {e}"));
        let json = serde_json::to_string(&value).expect("a YAML value is JSON");
        let dest = out.join(format!("catalog_{lang}.json"));
        std::fs::write(&dest, json).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
    }
}

/// Link the binary with its relative relocations packed (`DT_RELR`: glibc 2.36 and binutils
/// 2.38 or later). A position-independent binary carries one relocation per pointer it holds
/// in its data (25,000 here); as classic `RELA` entries they are 600 kB that the dynamic
/// loader reads at every start of every process of a run (and that stay in its RSS); packed,
/// they are a few kilobytes of bitmaps, applied faster. The code is the same.
fn pack_relative_relocations() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
