//! Correlation under the log conditions users actually hand in: lines out of order and
//! duplicated, a log that covers only part of the capture (and a capture that covers only part
//! of the log), and two appliances' logs given together. All built from the real captures and
//! logs in `captures/` (made by real TCP stacks; see captures/README.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use icidtrace::analyze::{AnalyzeOptions, analyze};
use serde_json::Value;

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(case(name).join("expected.json")).unwrap())
        .unwrap()
}

/// client → ICID as expected.json records it (the server's own record of who it served).
fn expected_icids(name: &str) -> BTreeMap<String, u64> {
    expected(name)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_string(),
                c["log"]["icid"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn run(captures: &[PathBuf], logs: &[PathBuf], filter: Option<String>) -> Value {
    let opts = AnalyzeOptions {
        captures: captures
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        logs: logs.to_vec(),
        filter,
        ..Default::default()
    };
    serde_json::to_value(analyze(&opts).unwrap()).unwrap()
}

/// client → ICID (None when unmatched) as the report gives it.
fn got_icids(report: &Value) -> BTreeMap<String, Option<u64>> {
    report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_string(),
                c["icid"].as_u64(),
            )
        })
        .collect()
}

fn lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(case(name).join("mail_logs"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// A small deterministic shuffle (no dependency needed for a fixed permutation).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

#[test]
fn burst_of_25_in_one_second_matches_every_icid() {
    let report = run(
        &[case("burst").join("capture.pcap")],
        &[case("burst").join("mail_logs")],
        None,
    );
    let want = expected_icids("burst");
    assert_eq!(want.len(), 25);
    let got = got_icids(&report);
    for (client, icid) in &want {
        assert_eq!(got[client], Some(*icid), "{client}");
    }
}

#[test]
fn lines_out_of_order_and_duplicated_give_the_same_matches() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = lines("burst");
    let header: Vec<String> = body.drain(..3).collect();
    let dups: Vec<String> = body.iter().step_by(7).cloned().collect();
    body.extend(dups);
    shuffle(&mut body, 42);
    let path = dir.path().join("mail_logs");
    std::fs::write(
        &path,
        header
            .into_iter()
            .chain(body)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
    .unwrap();

    let report = run(&[case("burst").join("capture.pcap")], &[path], None);
    let got = got_icids(&report);
    for (client, icid) in expected_icids("burst") {
        assert_eq!(got[&client], Some(icid), "{client}");
    }
    // The outcomes survive the disorder too.
    for c in report["connections"].as_array().unwrap() {
        assert_eq!(
            c["match"]["agreement"], "agrees",
            "{}: {}",
            c["client"], c["match"]
        );
    }
}

#[test]
fn a_log_covering_part_of_the_capture_matches_that_part_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let want = expected_icids("burst");
    let mut icids: Vec<u64> = want.values().copied().collect();
    icids.sort();
    let kept: Vec<u64> = icids[..12].to_vec();
    // Keep the header and the lines of the first 12 ICIDs (and their MIDs).
    let exp = expected("burst");
    let kept_mids: Vec<u64> = exp["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| kept.contains(&c["log"]["icid"].as_u64().unwrap()))
        .flat_map(|c| {
            c["log"]["mids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let keep = |l: &str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        let after = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
                .and_then(|w| w.parse::<u64>().ok())
        };
        match (after("ICID"), after("MID")) {
            (_, Some(mid)) => kept_mids.contains(&mid),
            (Some(icid), None) => kept.contains(&icid),
            (None, None) => true,
        }
    };
    let part: Vec<String> = lines("burst").into_iter().filter(|l| keep(l)).collect();
    let path = dir.path().join("mail_logs");
    std::fs::write(&path, part.join("\n") + "\n").unwrap();

    let report = run(&[case("burst").join("capture.pcap")], &[path], None);
    let got = got_icids(&report);
    for (client, icid) in &want {
        if kept.contains(icid) {
            assert_eq!(got[client], Some(*icid), "{client}");
        } else {
            assert_eq!(got[client], None, "{client} has no ICID in this log");
        }
    }
    assert_eq!(report["summary"]["matched"], 12);
    assert!(report["unmatched_icids"].as_array().unwrap().is_empty());
}

// Uses a BPF filter: needs libpcap (the default feature).
#[cfg(feature = "libpcap")]
#[test]
fn a_capture_covering_part_of_the_log_lists_the_other_icids() {
    let want = expected_icids("burst");
    // Only the connections from the first 10 client ports (a capture filter on the appliance).
    let ports: Vec<&str> = want
        .keys()
        .take(10)
        .map(|c| c.rsplit(':').next().unwrap())
        .collect();
    let filter = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let report = run(
        &[case("burst").join("capture.pcap")],
        &[case("burst").join("mail_logs")],
        Some(filter),
    );
    let got = got_icids(&report);
    assert_eq!(got.len(), 10);
    for (client, icid) in got {
        assert_eq!(icid, Some(want[&client]), "{client}");
    }
    let unmatched: Vec<u64> = report["unmatched_icids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["icid"].as_u64().unwrap())
        .collect();
    let mut others: Vec<u64> = want
        .iter()
        .filter(|(c, _)| !ports.iter().any(|p| c.ends_with(&format!(":{p}"))))
        .map(|(_, i)| *i)
        .collect();
    let mut unmatched_sorted = unmatched.clone();
    unmatched_sorted.sort();
    others.sort();
    assert_eq!(
        unmatched_sorted, others,
        "the 15 ICIDs of connections the capture does not have"
    );
}

#[test]
fn two_appliances_logs_given_together_each_keep_their_own_clock_and_icids() {
    // The IPv6 case's log runs on UTC+01:00 − 2 s, the burst log on UTC−05:00 + 3 s; give the
    // first another serial, as a second appliance would have.
    let dir = tempfile::tempdir().unwrap();
    let other: Vec<String> = lines("ipv6-delivered")
        .into_iter()
        .map(|l| {
            if l.contains("SN: ") {
                l.split("SN: ").next().unwrap().to_string() + "SN: 0000OTHERAPPLIANCE"
            } else {
                l
            }
        })
        .collect();
    let other_log = dir.path().join("esa2_mail_logs");
    std::fs::write(&other_log, other.join("\n") + "\n").unwrap();

    let report = run(
        &[
            case("burst").join("capture.pcap"),
            case("ipv6-delivered").join("capture.pcap"),
        ],
        &[case("burst").join("mail_logs"), other_log],
        None,
    );
    let got = got_icids(&report);
    let mut want = expected_icids("burst");
    want.extend(expected_icids("ipv6-delivered"));
    assert_eq!(got.len(), 26);
    for (client, icid) in &want {
        assert_eq!(got[client], Some(*icid), "{client}");
    }
    let clocks = report["clocks"].as_array().unwrap();
    assert_eq!(clocks.len(), 2);
    let offsets: Vec<f64> = clocks
        .iter()
        .map(|c| c["offset_seconds"].as_f64().unwrap())
        .collect();
    assert!(
        offsets.iter().any(|o| (o - (-17997.0)).abs() <= 1.0),
        "{offsets:?}"
    );
    assert!(
        offsets.iter().any(|o| (o - 3598.0).abs() <= 1.0),
        "{offsets:?}"
    );
}

#[test]
fn the_log_clock_can_be_given_instead_of_found() {
    let opts = AnalyzeOptions {
        captures: vec![
            case("rst-during-data")
                .join("capture.pcap")
                .to_string_lossy()
                .into(),
        ],
        logs: vec![case("rst-during-data").join("mail_logs")],
        clock: icidtrace::correlate::ClockHint::Offset(-17997),
        ..Default::default()
    };
    let report = serde_json::to_value(analyze(&opts).unwrap()).unwrap();
    assert_eq!(report["clock"]["source"], "given");
    assert_eq!(report["clock"]["offset_seconds"], -17997.0);
    assert_eq!(
        report["connections"][0]["icid"],
        expected("rst-during-data")["connections"][0]["log"]["icid"]
    );

    // A zone: America/New_York is UTC−05:00 in November; the 3 s skew is found.
    let opts = AnalyzeOptions {
        clock: icidtrace::correlate::ClockHint::Zone(chrono_tz::America::New_York),
        ..opts
    };
    let report = serde_json::to_value(analyze(&opts).unwrap()).unwrap();
    assert_eq!(report["clock"]["source"], "log_tz");
    let clock = &report["clock"];
    assert!(
        (clock["skew_seconds"].as_f64().unwrap() - 3.0).abs() <= 1.0,
        "{clock}"
    );
    assert!(
        (clock["offset_seconds"].as_f64().unwrap() + 17997.0).abs() <= 1.0,
        "{clock}"
    );
    assert_eq!(
        report["connections"][0]["icid"],
        expected("rst-during-data")["connections"][0]["log"]["icid"]
    );
}

#[test]
fn a_header_that_ignores_daylight_saving_does_not_mislead_the_clock() {
    // The header's "Time offset from UTC" does not follow DST: shift every log time by an hour
    // (the appliance on summer time) and keep the header as it was.
    let dir = tempfile::tempdir().unwrap();
    let shifted: Vec<String> = lines("burst")
        .into_iter()
        .map(|l| {
            let (stamp, rest) = l.split_at(24);
            let t = chrono::NaiveDateTime::parse_from_str(stamp, "%a %b %e %H:%M:%S %Y").unwrap();
            let t = t + chrono::Duration::hours(1);
            format!("{}{rest}", t.format("%a %b %e %H:%M:%S %Y"))
        })
        .collect();
    assert!(
        shifted
            .iter()
            .any(|l| l.contains("Time offset from UTC: -18000 seconds"))
    );
    let path = dir.path().join("mail_logs");
    std::fs::write(&path, shifted.join("\n") + "\n").unwrap();

    let report = run(&[case("burst").join("capture.pcap")], &[path], None);
    let offset = report["clock"]["offset_seconds"].as_f64().unwrap();
    assert!(
        (offset - (-17997.0 + 3600.0)).abs() <= 1.0,
        "offset {offset}"
    );
    let got = got_icids(&report);
    for (client, icid) in expected_icids("burst") {
        assert_eq!(got[&client], Some(icid), "{client}");
    }
}
