//! End-to-end over a generated capture: `benches/support/synth_capture.rs` (the code behind
//! `examples/gen_capture.rs`) writes a few MB of concurrent SMTP sessions of every outcome, the
//! appliance's mail log for them (clock an hour and some seconds ahead) and the truth; the
//! analysis must find every connection, match it to its own ICID (none for the unanswered
//! SYNs), and give the verdict layer and cause the outcome calls for — with the log, so the
//! STARTTLS sessions are judged by what the log fills in.

#[path = "../benches/support/synth_capture.rs"]
mod synth_capture;

use std::collections::HashMap;

use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::Value;
use synth_capture::{CaptureGenOptions, PcapWriter, generate};

fn options() -> CaptureGenOptions {
    CaptureGenOptions {
        seed: 7,
        size: Some(3 << 20),
        concurrent: 60,
        clock_offset: 3607,
        median_message: 3_000,
        even_mix: true,
        ..CaptureGenOptions::default()
    }
}

/// (capture, log, truth) in memory.
fn generated(o: &CaptureGenOptions) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut pcap = PcapWriter::new(Vec::new());
    let mut log = Vec::new();
    let mut truth = Vec::new();
    generate(o, &mut pcap, &mut log, &mut truth).expect("generating into memory");
    pcap.finish().expect("finishing into memory");
    (pcap.into_inner(), log, truth)
}

#[test]
fn generated_capture_gives_the_true_verdicts_and_icids() {
    let o = options();
    let (pcap, log, truth) = generated(&o);
    assert!(pcap.len() > 2 << 20, "capture of {} bytes", pcap.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let cap_path = dir.path().join("capture.pcap");
    let log_path = dir.path().join("mail_logs");
    std::fs::write(&cap_path, &pcap).expect("write capture");
    std::fs::write(&log_path, &log).expect("write log");
    let truth: Value = serde_json::from_slice(&truth).expect("truth.json is JSON");

    let report = analyze(&AnalyzeOptions {
        captures: vec![cap_path.to_string_lossy().into_owned()],
        logs: vec![log_path],
        ..AnalyzeOptions::default()
    })
    .expect("analysis runs");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let clock = report.clock.as_ref().expect("the log's clock is found");
    assert!(
        (clock.offset_seconds - o.clock_offset as f64).abs() < 1.0,
        "clock offset {} for {}",
        clock.offset_seconds,
        o.clock_offset
    );

    let by_client: HashMap<&str, _> = report
        .connections
        .iter()
        .map(|c| (c.client.as_str(), c))
        .collect();
    let want = truth["connections"].as_array().expect("connections");
    assert_eq!(report.connections.len(), want.len(), "connections found");
    let mut outcomes = HashMap::new();
    let mut errs = Vec::new();
    for t in want {
        let client = t["client"].as_str().expect("client");
        let outcome = t["outcome"].as_str().expect("outcome");
        *outcomes.entry(outcome).or_insert(0) += 1;
        let Some(c) = by_client.get(client) else {
            errs.push(format!("{client} ({outcome}): not in the report"));
            continue;
        };
        let filled = c.log_match.as_ref().and_then(|m| m.filled_in.as_ref());
        let (layer, cause) = match filled {
            Some(f) => (f.layer.as_str(), f.cause.as_str()),
            None => (c.verdict.layer.as_str(), c.verdict.cause.as_str()),
        };
        if c.icid != t["icid"].as_u64() {
            errs.push(format!(
                "{client} ({outcome}): ICID {:?}, truth {}",
                c.icid, t["icid"]
            ));
        }
        if layer != t["layer"] || cause != t["cause"] {
            errs.push(format!(
                "{client} ({outcome}): {layer}/{cause}, truth {}/{}",
                t["layer"], t["cause"]
            ));
        }
    }
    assert!(
        errs.is_empty(),
        "{} wrong:\n{}",
        errs.len(),
        errs.join("\n")
    );
    // Every outcome is there (an even mix).
    for (name, _) in truth["counts"].as_object().expect("counts") {
        assert!(
            outcomes.get(name.as_str()).copied().unwrap_or(0) >= 3,
            "too few {name} in {outcomes:?}"
        );
    }
    for (name, n) in truth["counts"].as_object().expect("counts") {
        assert_eq!(
            n.as_u64().unwrap_or(0),
            outcomes.get(name.as_str()).copied().unwrap_or(0),
            "count of {name}"
        );
    }
}

#[test]
fn generation_is_deterministic() {
    let o = CaptureGenOptions {
        size: Some(1 << 20),
        ..options()
    };
    let a = generated(&o);
    let b = generated(&o);
    assert!(a == b, "the same options gave different bytes");
    let c = generated(&CaptureGenOptions { seed: 8, ..o });
    assert!(a.0 != c.0, "another seed gave the same capture");
}
