//! `sluice maglev`: build one Maglev table from `NAME[=WEIGHT]` backends and print its balance.
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use maglev::{Backend, Table};
use serde::Serialize;

pub fn main(size: u32, backends: &[String], json: bool) -> ExitCode {
    let parsed: Result<Vec<Backend>, _> = backends.iter().map(|b| b.parse::<Backend>()).collect();
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sluice maglev: {e}");
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    let table = match Table::build(size, &parsed) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sluice maglev: {e}");
            return ExitCode::from(1);
        }
    };
    let took = started.elapsed();
    let mut out = BufWriter::new(io::stdout().lock());
    let written = if json {
        write_json(&mut out, &table)
    } else {
        write_text(&mut out, &table, took)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `sluice maglev ... | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice maglev: cannot write the report: {e}");
            ExitCode::from(1)
        }
    }
}

/// The `--json` document: `table` holds, per slot, an index into `backends`.
#[derive(Serialize)]
struct Report<'a> {
    size: u32,
    backends: Vec<BackendReport<'a>>,
    table: &'a [u32],
    fingerprint: String,
}

#[derive(Serialize)]
struct BackendReport<'a> {
    name: &'a str,
    weight: u32,
    entries: u32,
}

fn write_json(out: &mut impl Write, table: &Table) -> io::Result<()> {
    let counts = table.entries_per_backend();
    let report = Report {
        size: table.size(),
        backends: table
            .backends()
            .iter()
            .zip(&counts)
            .map(|(b, &entries)| BackendReport {
                name: &b.name,
                weight: b.weight,
                entries,
            })
            .collect(),
        table: table.entries(),
        fingerprint: table.fingerprint().to_string(),
    };
    serde_json::to_writer(&mut *out, &report)?;
    writeln!(out)
}

fn write_text(out: &mut impl Write, table: &Table, took: Duration) -> io::Result<()> {
    let backends = table.backends();
    let counts = table.entries_per_backend();
    let active = backends.iter().filter(|b| b.weight > 0).count();
    let balance = table.balance();
    let equal = backends
        .iter()
        .filter(|b| b.weight > 0)
        .all(|b| Some(b.weight) == backends.iter().map(|b| b.weight).find(|&w| w > 0));
    writeln!(out, "M (table size)       {}", table.size())?;
    writeln!(
        out,
        "N (backends)         {} ({active} with weight > 0)",
        backends.len()
    )?;
    let expected = if equal {
        format!("{:.2}", f64::from(table.size()) / active as f64)
    } else {
        "M x weight / total weight (see below)".to_owned()
    };
    writeln!(
        out,
        "entries per backend  min {}, max {}, expected {expected}, max/min {:.4}",
        balance.min, balance.max, balance.max_over_min
    )?;
    writeln!(
        out,
        "largest error        {:.2} entries against the weights",
        balance.max_error
    )?;
    writeln!(out, "fingerprint          {}", table.fingerprint())?;
    writeln!(
        out,
        "build time           {:.3} ms",
        took.as_secs_f64() * 1e3
    )?;
    writeln!(out)?;
    let width = backends
        .iter()
        .map(|b| b.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    writeln!(
        out,
        "{:>6}  {:<width$}  {:>10}  {:>8}  {:>11}  {:>8}",
        "index", "backend", "weight", "entries", "expected", "share"
    )?;
    for (i, (b, &c)) in backends.iter().zip(&counts).enumerate() {
        writeln!(
            out,
            "{i:>6}  {:<width$}  {:>10}  {c:>8}  {:>11.2}  {:>7.3}%",
            b.name,
            b.weight,
            table.expected_entries(i),
            100.0 * f64::from(c) / f64::from(table.size())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let b = [
            Backend::new("a", 2),
            Backend::new("b", 1),
            Backend::new("c", 0),
        ];
        Table::build(13, &b).unwrap()
    }

    #[test]
    fn json_has_the_documented_shape() {
        let t = table();
        let mut out = Vec::new();
        write_json(&mut out, &t).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["size"], 13);
        assert_eq!(v["backends"][0]["name"], "a");
        assert_eq!(v["backends"][0]["weight"], 2);
        assert_eq!(v["backends"][0]["entries"], 9);
        assert_eq!(v["backends"][2]["entries"], 0);
        let slots: Vec<u64> = v["table"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_u64().unwrap())
            .collect();
        assert_eq!(slots.len(), 13);
        assert!(slots.iter().all(|&i| i < 2), "only a and b have weight");
        assert_eq!(v["fingerprint"], t.fingerprint().to_string());
    }

    #[test]
    fn text_reports_balance_fingerprint_and_time() {
        let t = table();
        let mut out = Vec::new();
        write_text(&mut out, &t, Duration::from_micros(1500)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("M (table size)       13"), "{text}");
        assert!(text.contains("3 (2 with weight > 0)"), "{text}");
        assert!(text.contains("min 4, max 9"), "{text}");
        assert!(text.contains(&t.fingerprint().to_string()), "{text}");
        assert!(text.contains("1.500 ms"), "{text}");
    }

    #[test]
    fn bad_input_exits_1() {
        assert_eq!(main(13, &["a=x".into()], false), ExitCode::from(1));
        assert_eq!(main(12, &["a".into()], false), ExitCode::from(1));
        assert_eq!(main(13, &["a=0".into()], true), ExitCode::from(1));
    }
}
