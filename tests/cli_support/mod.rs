//! Running the `icidtrace` binary from integration tests: bundled inputs by name, and one run's
//! exit code and output. Shared by the tests that drive the command line.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use assert_cmd::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of a bundled case: `captures/<name>/<file>`.
pub fn case(name: &str, file: &str) -> String {
    root()
        .join("captures")
        .join(name)
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// A public capture from `../shared/captures/public/`.
pub fn public(name: &str) -> String {
    root()
        .join("../shared/captures/public")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs icidtrace with `args` (COLUMNS unset, so widths are the documented defaults).
pub fn run(args: &[&str]) -> Run {
    let out = Command::cargo_bin("icidtrace")
        .expect("the icidtrace binary is built")
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .expect("icidtrace runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs icidtrace and requires exit 0.
pub fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, 0, "icidtrace {args:?} failed:\n{}", r.stderr);
    r
}
