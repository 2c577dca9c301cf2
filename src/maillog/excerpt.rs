//! Excerpts: the text of the log lines that name given ICIDs and MIDs, for reports.
//!
//! Contract: a second, cheap pass over the same files (plain or gzip) that returns, per
//! requested key, the lines mentioning `ICID n` or `MID n` as whole words, with file and line
//! number, capped per key. It interprets nothing; the lifecycle records are built elsewhere.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;

/// One line of a log, as it stands in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub file: String,
    /// 1-based line number (in the decompressed text for gzip files).
    pub line: u64,
    pub text: String,
}

/// Which lines to collect: ICIDs and MIDs, each mapped to the key the caller wants them under.
#[derive(Debug, Default, Clone)]
pub struct ExcerptRequest {
    pub icids: HashMap<u64, usize>,
    pub mids: HashMap<u64, usize>,
}

/// Lines kept per key at most.
pub const MAX_LINES_PER_KEY: usize = 200;

/// The numbers that follow `word ` in `line` (e.g. every n in "... MID n ...").
fn ids_after<'a>(line: &'a str, word: &'a str) -> impl Iterator<Item = u64> + 'a {
    line.match_indices(word).filter_map(move |(i, _)| {
        let before_ok = i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric();
        let rest = &line[i + word.len()..];
        let rest = rest.strip_prefix(' ')?;
        let digits: &str = &rest[..rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len())];
        before_ok.then(|| digits.parse().ok()).flatten()
    })
}

/// Collects the requested lines from `files`, in file and line order, grouped by key.
pub fn collect(files: &[&Path], req: &ExcerptRequest) -> HashMap<usize, Vec<LogLine>> {
    let mut out: HashMap<usize, Vec<LogLine>> = HashMap::new();
    if req.icids.is_empty() && req.mids.is_empty() {
        return out;
    }
    for path in files {
        let Ok(mut f) = File::open(path) else {
            continue;
        };
        let mut magic = [0u8; 2];
        let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        let Ok(f) = File::open(path) else { continue };
        let reader: Box<dyn BufRead> = if gz {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
        } else {
            Box::new(BufReader::new(f))
        };
        let name = path.display().to_string();
        for (n, line) in reader.split(b'\n').enumerate() {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', ' ']);
            let mut keys: Vec<usize> = ids_after(text, "ICID")
                .filter_map(|i| req.icids.get(&i).copied())
                .collect();
            keys.extend(ids_after(text, "MID").filter_map(|m| req.mids.get(&m).copied()));
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                let lines = out.entry(k).or_default();
                if lines.len() < MAX_LINES_PER_KEY {
                    lines.push(LogLine {
                        file: name.clone(),
                        line: n as u64 + 1,
                        text: text.to_string(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_whole_words() {
        let l = "Thu Aug 14 11:04:31 2014 Info: Start MID 1404 ICID 10293";
        assert_eq!(ids_after(l, "ICID").collect::<Vec<_>>(), vec![10293]);
        assert_eq!(ids_after(l, "MID").collect::<Vec<_>>(), vec![1404]);
        assert_eq!(ids_after("New SMTP DCID 5 XMID 7", "MID").count(), 0);
        assert_eq!(
            ids_after("ICID 102930", "ICID").collect::<Vec<_>>(),
            vec![102930]
        );
    }

    #[test]
    fn collects_the_technote_lines_of_one_icid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/maillogs/technote/receiving-aborted-fin-rst.log"
        ));
        let req = ExcerptRequest {
            icids: HashMap::from([(10293, 0)]),
            mids: HashMap::from([(1404, 0)]),
        };
        let got = collect(&[path], &req);
        let lines = &got[&0];
        assert!(
            lines.iter().any(|l| l.text.contains("ICID 10293 lost")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.text.contains("Receiving aborted")),
            "{lines:?}"
        );
        assert!(lines.windows(2).all(|w| w[0].line < w[1].line));
    }
}
