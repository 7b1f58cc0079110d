//! The function binaries that ship, for the runtime-level tests: each `bootstrap` that
//! `sam build` wrote, started under the Lambda Runtime API stand-in (`runtime_api.rs`).

use std::path::{Path, PathBuf};

use super::runtime_api::{Function, RuntimeApi};

/// A function binary and what runs it.
pub struct Binary {
    runner: Vec<String>,
    path: PathBuf,
}

/// The binary that ships: the `bootstrap` that `sam build` (run by `make test` first) wrote
/// for the function, arm64 like the deployed one, run through qemu-user's `qemu-aarch64`
/// when this machine is not arm64. `RELEASE_BIN_DIR` names a folder of release binaries of
/// this machine's own instead (`cargo build --release`, then `RELEASE_BIN_DIR=target/release`).
pub fn release_binary(name: &str) -> Binary {
    if let Some(dir) = std::env::var_os("RELEASE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(path.exists(), "{} is missing: build it with `cargo build --release`", path.display());
        return Binary { runner: Vec::new(), path };
    }
    let function = match name {
        "regenerate-secret" => "RegenerateSecretFunction",
        "rotate-secret" => "RotateSecretFunction",
        "verify-secret" => "VerifySecretFunction",
        "oauth" => "OAuthFunction",
        other => panic!("no function in template.yaml runs {other}"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".aws-sam/build").join(function).join("bootstrap");
    let elf =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; `make test` runs sam build first", path.display()));
    // e_machine, at byte 18 of an ELF header: 183 is AArch64.
    let arm64 = elf.get(18..20) == Some(&183u16.to_le_bytes()[..]);
    let runner = if arm64 && std::env::consts::ARCH != "aarch64" {
        let sysroot = std::env::var("QEMU_LD_PREFIX").unwrap_or_else(|_| "/usr/aarch64-linux-gnu".into());
        vec!["qemu-aarch64".to_owned(), "-L".to_owned(), sysroot]
    } else {
        Vec::new()
    };
    Binary { runner, path }
}

impl RuntimeApi {
    pub fn start_function(&self, binary: &Binary, env: &[(&str, String)], log: Option<&Path>) -> Function {
        self.spawn_under(&binary.runner, &binary.path, env, log)
    }
}
