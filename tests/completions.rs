//! Shell completions and man pages come from the same clap definitions as `--help`: for every
//! shell, the script `icidtrace completions SHELL` prints names every subcommand and every long
//! flag of `analyze` and `log`; so do the man pages of `icidtrace man`. The flags are taken from
//! the clap definition itself, so a new flag cannot be forgotten.

use std::path::Path;

use assert_cmd::Command;
use clap::ValueEnum;

fn icidtrace() -> Command {
    let mut cmd = Command::cargo_bin("icidtrace").expect("the icidtrace binary is built");
    cmd.env_remove("COLUMNS");
    cmd
}

/// Runs and requires exit code 0 and nothing on stderr; returns stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = icidtrace().args(args).output().expect("icidtrace runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert_eq!(stderr, "", "{args:?}: nothing on stderr");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The subcommands users type (not clap's `help`).
fn subcommands() -> Vec<String> {
    let cmd = icidtrace::cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    for must in ["analyze", "log", "completions", "man"] {
        assert!(names.iter().any(|n| n == must), "{must} in {names:?}");
    }
    names
}

/// The long flags of a subcommand, from its clap definition (`--help` and `--version` are
/// clap's own).
fn long_flags(sub: &str) -> Vec<String> {
    let cmd = icidtrace::cli::command();
    let sub = cmd
        .get_subcommands()
        .find(|c| c.get_name() == sub)
        .unwrap_or_else(|| panic!("no subcommand {sub}"));
    let flags: Vec<String> = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help" && *l != "version")
        .map(|l| format!("--{l}"))
        .collect();
    assert!(flags.len() >= 4, "{sub}: {flags:?}");
    flags
}

/// The flags of `analyze` and `log` that every generated text must name.
fn all_flags() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for sub in ["analyze", "log"] {
        for f in long_flags(sub) {
            v.push((sub.to_string(), f));
        }
    }
    // The flags this issue added must be among them (the list is not empty by accident).
    for f in [
        "--client",
        "--server",
        "--since",
        "--until",
        "--only",
        "--sort",
        "--color",
        "--verbose",
        "--fail-on",
        "--quiet",
        "--export",
    ] {
        assert!(
            v.iter().any(|(s, x)| s == "analyze" && x == f),
            "analyze {f} in the clap definition"
        );
    }
    v
}

/// A flag as it appears in a text: fish writes `-l client`, PowerShell and others `--client`.
fn mentions_flag(text: &str, shell: &str, flag: &str) -> bool {
    let bare = flag.trim_start_matches("--");
    match shell {
        "fish" => text.contains(&format!("-l {bare}")),
        _ => text.contains(flag),
    }
}

#[test]
fn completions_for_every_shell_name_every_subcommand_and_flag() {
    let shells: Vec<String> = clap_complete::Shell::value_variants()
        .iter()
        .map(|s| s.to_possible_value().unwrap().get_name().to_string())
        .collect();
    for must in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.iter().any(|s| s == must), "{must} in {shells:?}");
    }
    let subs = subcommands();
    let flags = all_flags();
    for shell in &shells {
        let script = stdout_of(&["completions", shell]);
        assert!(script.len() > 500, "{shell}: a script, not {script:?}");
        assert!(script.contains("icidtrace"), "{shell}");
        for sub in &subs {
            assert!(script.contains(sub.as_str()), "{shell}: subcommand {sub}");
        }
        for (sub, flag) in &flags {
            assert!(
                mentions_flag(&script, shell, flag),
                "{shell}: {sub} {flag} missing from the completion script"
            );
        }
        // Values users would otherwise have to look up (PowerShell and elvish complete flags
        // only).
        if !["bash", "zsh", "fish"].contains(&shell.as_str()) {
            continue;
        }
        for value in ["aborted", "disagreeing", "duration", "markdown", "never"] {
            assert!(script.contains(value), "{shell}: value {value}");
        }
    }
}

#[test]
fn completions_script_for_bash_is_valid_bash() {
    let script = stdout_of(&["completions", "bash"]);
    let Ok(out) = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
    else {
        eprintln!("skipped: no bash");
        return;
    };
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = icidtrace().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}

/// roff escapes `-` as `\-`: the text as a reader sees it.
fn unroff(page: &str) -> String {
    page.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
}

#[test]
fn man_page_names_every_subcommand_and_each_page_every_flag() {
    let main = stdout_of(&["man"]);
    assert!(
        main.starts_with(".ie") || main.contains(".TH icidtrace"),
        "{main}"
    );
    assert!(main.contains(".TH icidtrace 1"), "{main}");
    let main_text = unroff(&main);
    for sub in subcommands() {
        assert!(
            main_text.contains(&format!("icidtrace-{sub}(1)")),
            "icidtrace(1) names icidtrace-{sub}(1):\n{main_text}"
        );
        let page = unroff(&stdout_of(&["man", &sub]));
        assert!(page.contains(&format!(".TH icidtrace-{sub} 1")), "{page}");
    }
    for (sub, flag) in all_flags() {
        let page = unroff(&stdout_of(&["man", &sub]));
        assert!(page.contains(&flag), "icidtrace-{sub}(1) lacks {flag}");
    }
    // The examples and exit codes of --help are in the pages too.
    let analyze = unroff(&stdout_of(&["man", "analyze"]));
    assert!(analyze.contains("Exit codes"), "{analyze}");
    assert!(analyze.contains("--fail-on"), "{analyze}");
    assert!(analyze.contains("NO_COLOR"), "{analyze}");
}

#[test]
fn man_out_dir_writes_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = icidtrace()
        .args(["man", "--out-dir"])
        .arg(dir.path().join("man1"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let man1 = dir.path().join("man1");
    let mut names: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = vec!["icidtrace.1".to_string()];
    want.extend(subcommands().iter().map(|s| format!("icidtrace-{s}.1")));
    want.sort();
    assert_eq!(names, want);
    // Each file is the page `icidtrace man SUBCOMMAND` prints.
    let analyze = std::fs::read_to_string(man1.join("icidtrace-analyze.1")).unwrap();
    assert_eq!(analyze, stdout_of(&["man", "analyze"]));
    // The page renders, when man is here to try.
    if Path::new("/usr/bin/man").exists() {
        let r = std::process::Command::new("man")
            .arg("-l")
            .arg(man1.join("icidtrace-analyze.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output();
        if let Ok(r) = r {
            if r.status.success() {
                let text = String::from_utf8_lossy(&r.stdout);
                assert!(text.contains("--client"), "{text}");
            }
        }
    }
}

#[test]
fn man_of_an_unknown_command_is_refused() {
    let out = icidtrace().args(["man", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("frobnicate"), "{stderr}");
    assert!(stderr.contains("analyze"), "{stderr}");
    assert_eq!(out.stdout, b"");
}
