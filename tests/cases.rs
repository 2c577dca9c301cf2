//! End-to-end: every `captures/<case>/` made by real TCP stacks gives the verdicts written in its
//! `expected.json` (the wire facts there were read from the capture with tshark when it was
//! made): from the capture alone (`verdict_without_log`), and with the case's `mail_logs`
//! (ICID, MIDs, the log's outcome, and agreement between wire and log).

use std::path::{Path, PathBuf};

use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("captures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn capture_file(dir: &Path) -> PathBuf {
    for name in ["capture.pcap", "capture.pcapng", "capture.pcap.gz"] {
        if dir.join(name).is_file() {
            return dir.join(name);
        }
    }
    panic!("{}: no capture file", dir.display());
}

/// Compares one expected connection with the report's, field by field; returns the mismatches.
fn compare(case: &str, want: &Value, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    // Without a log the wire-only verdict applies (they differ only where TLS hides the end).
    let verdict_key = if want.get("verdict_without_log").is_some() {
        "verdict_without_log"
    } else {
        "verdict"
    };
    let mut check = |path: &[&str]| {
        let mut w = want;
        let mut g = got;
        for p in path {
            w = &w[*p];
            g = &g[*p];
        }
        if w.is_null() && path.len() > 1 && want.pointer(&format!("/{}", path.join("/"))).is_none()
        {
            return; // not stated in expected.json
        }
        // first_fin / first_rst: expected gives the side only.
        let g = if path[0] == "close" {
            g.get("side").unwrap_or(g)
        } else {
            g
        };
        let g = if path[0] == "verdict_without_log" {
            &got["verdict"]
        } else {
            g
        };
        let g = if path[0] == "verdict_without_log" {
            &g[path[1]]
        } else {
            g
        };
        if w != g {
            errs.push(format!(
                "{case} {}: {} expected {w}, got {g}",
                want["client"],
                path.join(".")
            ));
        }
    };
    for f in ["layer", "initiator", "cause", "phase"] {
        check(&[verdict_key, f]);
    }
    for f in ["first_fin", "first_rst"] {
        check(&["close", f]);
    }
    for f in ["quit", "starttls", "transactions", "completed"] {
        check(&["smtp", f]);
    }
    errs
}

/// Findings that blame a device in the path: never reported where the case has none, even in the
/// cases whose expected.json (made by expected.py) lists no findings at all.
const MIDDLEBOX: [&str; 6] = [
    "forged_rst",
    "forged_fin",
    "line_length_limit",
    "recipient_limit",
    "header_length_limit",
    "body_line_length_limit",
];

/// The expected findings of one connection must all be found, and where expected.json lists
/// findings (the fw-* and tls-* cases), none may be reported that was not expected; elsewhere
/// none that blames a device in the path.
fn compare_findings(case: &str, block: &str, want: &Value, got: &Value) -> Vec<String> {
    let kinds = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["kind"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let want_kinds = kinds(&want["findings"]);
    let got_kinds = kinds(&got["verdict"]["findings"]);
    let mut errs = Vec::new();
    for k in &want_kinds {
        if !got_kinds.contains(k) {
            errs.push(format!(
                "{case} {block} {}: finding {k} expected, got {got_kinds:?}",
                want["client"]
            ));
        }
    }
    let listed = want.get("findings").is_some();
    for k in &got_kinds {
        if !want_kinds.contains(k) && (listed || MIDDLEBOX.contains(&k.as_str())) {
            errs.push(format!(
                "{case} {block} {}: {k} reported where none is",
                want["client"]
            ));
        }
    }
    errs
}

#[test]
fn every_case_gives_its_expected_verdicts() {
    let dirs = cases();
    assert!(
        dirs.len() >= 14,
        "expected the bundled cases in captures/, found {}",
        dirs.len()
    );
    let mut errs = Vec::new();
    for dir in dirs {
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        // The appliance's capture, and where the case has one, the client's.
        let mut files = vec![(capture_file(&dir), "capture", expected.clone())];
        if let Some(block) = expected.get("client_capture") {
            files.push((
                dir.join(block["file"].as_str().unwrap()),
                "client_capture",
                block.clone(),
            ));
        }
        for (file, block, exp) in files {
            let opts = AnalyzeOptions {
                captures: vec![file.to_string_lossy().into()],
                ..Default::default()
            };
            let report = analyze(&opts).unwrap_or_else(|e| panic!("{case}: {e}"));
            let json = serde_json::to_value(&report).unwrap();
            let got = json["connections"].as_array().unwrap();
            let want = exp["connections"].as_array().unwrap();
            if got.len() != want.len() {
                errs.push(format!(
                    "{case} {block}: {} connections expected, got {}",
                    want.len(),
                    got.len()
                ));
            }
            for w in want {
                match got
                    .iter()
                    .find(|g| g["client"] == w["client"] && g["server"] == w["server"])
                {
                    Some(g) => {
                        errs.extend(compare(&format!("{case} {block}"), w, g));
                        errs.extend(compare_findings(&case, block, w, g));
                    }
                    None => errs.push(format!(
                        "{case} {block}: connection {} not in the report",
                        w["client"]
                    )),
                }
            }
        }
    }
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

fn load(dir: &Path) -> (String, Value) {
    let case = dir.file_name().unwrap().to_string_lossy().to_string();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    (case, expected)
}

#[test]
fn with_the_mail_log_every_connection_gets_its_icid_and_the_log_agrees() {
    let mut errs = Vec::new();
    let mut checked = 0;
    for dir in cases() {
        if !dir.join("mail_logs").is_file() {
            continue;
        }
        let (case, expected) = load(&dir);
        let opts = AnalyzeOptions {
            captures: vec![capture_file(&dir).to_string_lossy().into()],
            logs: vec![dir.join("mail_logs")],
            ..Default::default()
        };
        let report = analyze(&opts).unwrap_or_else(|e| panic!("{case}: {e}"));
        let json = serde_json::to_value(&report).unwrap();
        // The clock: the log's header offset plus the skew the server was given, found without
        // being told (the log's one-second resolution allows a second either way).
        let clock = &json["clock"];
        let want_offset = expected["clock"]["log_minus_utc_seconds"].as_f64().unwrap();
        let got_offset = clock["offset_seconds"].as_f64().unwrap();
        if (got_offset - want_offset).abs() > 1.0 {
            errs.push(format!(
                "{case}: clock offset {got_offset}, expected {want_offset} ± 1"
            ));
        }
        if clock["supporting_pairs"].as_u64().unwrap()
            < expected["connections"].as_array().unwrap().len() as u64
        {
            errs.push(format!(
                "{case}: only {} pairs support the clock",
                clock["supporting_pairs"]
            ));
        }
        for w in expected["connections"].as_array().unwrap() {
            let Some(g) = json["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["client"] == w["client"])
            else {
                errs.push(format!("{case}: {} missing", w["client"]));
                continue;
            };
            checked += 1;
            for f in ["icid", "mids", "log_outcome"] {
                if g[f] != w["log"][f] {
                    errs.push(format!(
                        "{case} {}: {f} expected {}, got {}",
                        w["client"], w["log"][f], g[f]
                    ));
                }
            }
            // Where TLS hid the end, the log fills in the verdict expected with the log.
            if w["verdict_without_log"] != w["verdict"] {
                for f in ["layer", "initiator", "cause", "phase"] {
                    let filled = &g["match"]["filled_in"][f];
                    if *filled != w["verdict"][f] {
                        errs.push(format!(
                            "{case} {}: filled-in {f} expected {}, got {filled}",
                            w["client"], w["verdict"][f]
                        ));
                    }
                }
            }
            // Wire and log tell the same story, except where one of them cannot tell.
            let agreement = &g["match"]["agreement"];
            let undecidable = w["verdict_without_log"]["layer"] == "unknown";
            let want = if undecidable { "unknown" } else { "agrees" };
            if agreement != want {
                errs.push(format!(
                    "{case} {}: agreement {agreement}, expected {want} ({})",
                    w["client"], g["match"]["agreement_reason"]
                ));
            }
        }
        if !json["unmatched_icids"].as_array().unwrap().is_empty() {
            errs.push(format!(
                "{case}: unmatched ICIDs {}",
                json["unmatched_icids"]
            ));
        }
    }
    assert!(checked >= 38, "only {checked} connections checked");
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// The firewall-limit cases: each side shows what got through, and the finding names the limit
/// with the unit's size (the numbers the case was built with: a 2,049-octet RCPT line, a fourth
/// RCPT with a limit of three, a 14,000-octet header section cut at 10,000).
#[test]
fn limit_cases_name_the_limit_with_its_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let cases: [(&str, &str, Option<&str>, &str, &str); 6] = [
        (
            "fw-limit-line",
            "capture.pcap",
            Some("line_length_limit"),
            "had reached 1,448 octets without its line end",
            "envelope",
        ),
        (
            "fw-limit-line",
            "capture-client.pcap",
            Some("line_length_limit"),
            "2,049-octet RCPT line, unanswered",
            "envelope",
        ),
        ("fw-limit-rcpt", "capture.pcap", None, "", "envelope"),
        (
            "fw-limit-rcpt",
            "capture-client.pcap",
            Some("recipient_limit"),
            "RCPT number 4, unanswered, where the 3 before it were answered",
            "envelope",
        ),
        (
            "fw-limit-header",
            "capture.pcap",
            Some("header_length_limit"),
            "still without its empty line, had reached 8,688 octets",
            "data",
        ),
        (
            "fw-limit-header",
            "capture-client.pcap",
            Some("header_length_limit"),
            "a header section of 14,022 octets",
            "data",
        ),
    ];
    for (case, file, kind, words, phase) in cases {
        let opts = AnalyzeOptions {
            captures: vec![root.join(case).join(file).to_string_lossy().into()],
            ..Default::default()
        };
        let json = serde_json::to_value(analyze(&opts).unwrap()).unwrap();
        let c = &json["connections"][0];
        let v = &c["verdict"];
        assert_eq!(
            (&v["initiator"], &v["cause"], &v["phase"]),
            (
                &Value::from("middlebox"),
                &Value::from("forged_rst"),
                &Value::from(phase)
            ),
            "{case} {file}: {v}"
        );
        let limits: Vec<&Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"].as_str().is_some_and(|k| k.ends_with("_limit")))
            .collect();
        match kind {
            None => assert!(limits.is_empty(), "{case} {file}: {limits:?}"),
            Some(kind) => {
                assert_eq!(limits.len(), 1, "{case} {file}: {limits:?}");
                assert_eq!(limits[0]["kind"], kind, "{case} {file}");
                let detail = limits[0]["detail"].as_str().unwrap();
                assert!(detail.contains(words), "{case} {file}: {detail}");
                assert!(
                    v["next_steps"].as_str().unwrap().contains("policy map"),
                    "{case} {file}: {}",
                    v["next_steps"]
                );
                assert_eq!(json["summary"]["by_finding"][kind], 1, "{case} {file}");
            }
        }
    }
}
