//! One frame of `sluice top` as plain text: rates are the counters' change between two polls
//! over the seconds between them; the first poll alone shows totals and "-" for rates.
use super::openmetrics::{label, Labels, Metrics};
use super::sample::Sample;

/// The appliance's start time (for the uptime).
const START_TIME: &str = "sluice_start_time_seconds";
/// Exception-path packets, shown only when the appliance exports the family.
const EXCEPTION: &str = "sluice_exception_packets_total";

/// The frame for `cur`, with rates against `prev` taken `dt` seconds earlier; every line is cut
/// to `width` characters.
pub fn render(prev: Option<&Sample>, cur: &Sample, dt: f64, width: usize) -> String {
    let r = Rates {
        prev: prev.filter(|_| dt > 0.0).map(|p| &p.metrics),
        cur: &cur.metrics,
        dt,
    };
    let mut lines = header(cur);
    lines.push(totals(&r));
    lines.push(String::new());
    lines.extend(services(&r, cur));
    lines.push(String::new());
    lines.extend(backends(&r, cur));
    lines.push(String::new());
    lines.extend(drops(&r));
    lines.push(String::new());
    lines.extend(cores(&r));
    if cur.metrics.has(EXCEPTION) {
        lines.push(String::new());
        lines.extend(exceptions(&r));
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(cut(line.trim_end(), width));
        out.push('\n');
    }
    out
}

/// The counters of two polls.
struct Rates<'a> {
    prev: Option<&'a Metrics>,
    cur: &'a Metrics,
    dt: f64,
}

impl Rates<'_> {
    /// Per second of the sample `name` with exactly `labels`; `None` without a previous poll.
    fn of(&self, name: &str, labels: &Labels) -> Option<f64> {
        let prev = self.prev?;
        let now = self.value(self.cur, name, labels)?;
        let before = self.value(prev, name, labels).unwrap_or(0.0);
        // A counter that went down was reset (a restart): it counted `now` since then.
        let delta = if now >= before { now - before } else { now };
        Some(delta / self.dt)
    }

    /// Per second of the sum of every sample `name`.
    fn of_sum(&self, name: &str) -> Option<f64> {
        let series = self.cur.series(name);
        if series.is_empty() {
            return None;
        }
        series.iter().map(|(l, _)| self.of(name, l)).sum()
    }

    fn value(&self, m: &Metrics, name: &str, labels: &Labels) -> Option<f64> {
        m.series(name)
            .iter()
            .find(|(l, _)| l == labels)
            .map(|&(_, v)| v)
    }
}

fn header(cur: &Sample) -> Vec<String> {
    let m = &cur.metrics;
    let mut first = vec![format!(
        "epoch {}",
        m.get("sluice_config_epoch", &[]).map_or("-".into(), count)
    )];
    first.push(format!(
        "reloads {} ok / {} failed",
        m.get("sluice_config_reloads_total", &[("result", "success")])
            .map_or("-".into(), count),
        m.get("sluice_config_reloads_total", &[("result", "failure")])
            .map_or("-".into(), count),
    ));
    if let Some(start) = m.get(START_TIME, &[]) {
        first.push(format!("uptime {}", duration(cur.unix - start)));
    }
    if let Some((labels, _)) = m.series("sluice_build_info").first() {
        first.push(format!(
            "sluice {} (DPDK {})",
            label(labels, "version"),
            label(labels, "dpdk")
        ));
    }
    let mut lines = vec![first.join("   ")];
    let tables: Vec<String> = m
        .series("sluice_table_info")
        .iter()
        .map(|(l, _)| format!("{} {}", label(l, "service"), label(l, "fingerprint")))
        .collect();
    if !tables.is_empty() {
        lines.push(format!("tables   {}", tables.join("   ")));
    }
    if let Err(e) = &cur.state {
        lines.push(format!("/state: {e} (endpoints and health detail missing)"));
    }
    lines
}

fn totals(r: &Rates) -> String {
    let flows = r.cur.sum("sluice_flows");
    let capacity: Labels = vec![("reason".into(), "capacity".into())];
    format!(
        "rx {} pps   tx {} pps   drops {}/s   flows {}   new flows {}/s   stateless {}/s   \
         evicted for room {}/s ({}/s established)",
        opt(r.of_sum("sluice_rx_packets_total")),
        opt(r.of_sum("sluice_tx_packets_total")),
        opt(r.of_sum("sluice_dropped_packets_total")),
        count(flows),
        opt(r.of_sum("sluice_flows_created_total")),
        opt(r.of_sum("sluice_flows_stateless_total")),
        opt(r.of("sluice_flows_evicted_total", &capacity)),
        opt(r.of_sum("sluice_flows_evicted_established_total")),
    )
}

fn services(r: &Rates, cur: &Sample) -> Vec<String> {
    let mut rows = Vec::new();
    for (labels, _) in r.cur.series("sluice_service_packets_total") {
        let name = label(labels, "service");
        let bytes: Labels = vec![("service".into(), name.into())];
        let up = r.cur.series("sluice_backend_up");
        let of_service = up.iter().filter(|(l, _)| label(l, "service") == name);
        let total = of_service.clone().count();
        let healthy = of_service.filter(|&&(_, v)| v > 0.0).count();
        let (endpoint, forwarding) = match cur.state.as_ref().ok().and_then(|s| s.service(name)) {
            Some(s) => (
                format!("{}/{}", endpoint(&s.vip, s.port), s.protocol),
                s.forwarding.clone(),
            ),
            None => ("-".into(), "-".into()),
        };
        rows.push(vec![
            name.to_owned(),
            endpoint,
            forwarding,
            opt(r.of("sluice_service_packets_total", labels)),
            r.of("sluice_service_bytes_total", &bytes)
                .map_or("-".into(), |b| bits(b * 8.0)),
            format!("{healthy}/{total}"),
        ]);
    }
    table(
        &["SERVICE", "ENDPOINT", "FWD", ">PPS", ">BIT/S", ">UP"],
        rows,
    )
}

/// `vip:port`, with brackets around an IPv6 VIP.
fn endpoint(vip: &str, port: u16) -> String {
    if vip.contains(':') {
        format!("[{vip}]:{port}")
    } else {
        format!("{vip}:{port}")
    }
}

fn backends(r: &Rates, cur: &Sample) -> Vec<String> {
    let mut rows = Vec::new();
    for (labels, _) in r.cur.series("sluice_backend_packets_total") {
        let service = label(labels, "service");
        let backend = label(labels, "backend");
        let pick = [("service", service), ("backend", backend)];
        let pps = r.of("sluice_backend_packets_total", labels);
        let service_pps = r.of(
            "sluice_service_packets_total",
            &vec![("service".into(), service.into())],
        );
        let share = match (pps, service_pps) {
            (Some(p), Some(s)) if s > 0.0 => format!("{:.1}", 100.0 * p / s),
            _ => "-".into(),
        };
        let state = match r.cur.get("sluice_backend_up", &pick) {
            Some(v) if v > 0.0 => "up",
            Some(_) => "DOWN",
            None => "-",
        };
        let health = cur
            .state
            .as_ref()
            .ok()
            .and_then(|s| s.health(service, backend))
            .filter(|h| h.consecutive_fail > 0)
            .map(|h| {
                format!(
                    "{} check: {} failed, {}",
                    h.kind,
                    h.consecutive_fail,
                    h.last_error.as_deref().unwrap_or("no error recorded")
                )
            })
            .unwrap_or_default();
        rows.push(vec![
            backend.to_owned(),
            service.to_owned(),
            opt(pps),
            share,
            r.cur
                .get("sluice_backend_flows", &pick)
                .map_or("-".into(), count),
            state.to_owned(),
            r.cur
                .get("sluice_backend_weight", &pick)
                .map_or("-".into(), count),
            health,
        ]);
    }
    table(
        &[
            "BACKEND", "SERVICE", ">PPS", ">SHARE %", ">FLOWS", "STATE", ">WEIGHT", "HEALTH",
        ],
        rows,
    )
}

fn drops(r: &Rates) -> Vec<String> {
    let name = "sluice_dropped_packets_total";
    let mut rows: Vec<(f64, f64, Vec<String>)> = r
        .cur
        .series(name)
        .iter()
        .filter(|&&(_, total)| total > 0.0)
        .map(|(labels, total)| {
            let rate = r.of(name, labels);
            (
                rate.unwrap_or(0.0),
                *total,
                vec![label(labels, "reason").to_owned(), opt(rate), count(*total)],
            )
        })
        .collect();
    if rows.is_empty() {
        return vec!["DROPS    none".into()];
    }
    // The drops happening now first, then the largest totals.
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    table(
        &["DROPS", ">PER S", ">TOTAL"],
        rows.into_iter().map(|(_, _, row)| row).collect(),
    )
}

fn cores(r: &Rates) -> Vec<String> {
    let busy = r.cur.series("sluice_worker_busy_seconds_total");
    let rx = r.cur.series("sluice_rx_packets_total");
    let mut rows = Vec::new();
    for (i, (labels, _)) in busy.iter().enumerate() {
        let core = label(labels, "core");
        let pick = [("core", core)];
        // Both families list the workers in the same order (one per RX queue), and the rx
        // counter is the only per-worker packet count, so they pair by position.
        let packets = (rx.len() == busy.len()).then(|| &rx[i].0);
        let bursts = r
            .cur
            .series("sluice_worker_bursts_total")
            .iter()
            .find(|(l, _)| label(l, "core") == core)
            .map(|(l, _)| l);
        let mean_burst = match (packets, bursts) {
            (Some(p), Some(b)) => match (
                r.of("sluice_rx_packets_total", p),
                r.of("sluice_worker_bursts_total", b),
            ) {
                (Some(p), Some(b)) if b > 0.0 => format!("{:.1}", p / b),
                _ => "-".into(),
            },
            _ => "-".into(),
        };
        rows.push(vec![
            core.to_owned(),
            r.of("sluice_worker_busy_seconds_total", labels)
                .map_or("-".into(), |s| format!("{:.1}", 100.0 * s)),
            r.cur.get("sluice_flows", &pick).map_or("-".into(), count),
            mean_burst,
        ]);
    }
    table(&["CORE", ">BUSY %", ">FLOWS", ">MEAN BURST"], rows)
}

fn exceptions(r: &Rates) -> Vec<String> {
    let rows = r
        .cur
        .series(EXCEPTION)
        .iter()
        .map(|(labels, total)| {
            let what: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let what = if what.is_empty() {
                "all".to_owned()
            } else {
                what.join(",")
            };
            vec![what, opt(r.of(EXCEPTION, labels)), count(*total)]
        })
        .collect();
    table(&["EXCEPTION PATH", ">PER S", ">TOTAL"], rows)
}

/// A header line and one line per row, columns padded to their widest cell; a heading that
/// starts with '>' is a right-aligned (numeric) column. The last column is not padded.
fn table(headings: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let right: Vec<bool> = headings.iter().map(|h| h.starts_with('>')).collect();
    let headings: Vec<String> = headings
        .iter()
        .map(|h| h.trim_start_matches('>').to_owned())
        .collect();
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&headings)
        .chain(&rows)
        .map(|row| {
            let last = row.len().saturating_sub(1);
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let w = widths.get(i).copied().unwrap_or(0);
                    match (right.get(i).copied().unwrap_or(false), i == last) {
                        (true, _) => format!("{cell:>w$}"),
                        (false, true) => cell.clone(),
                        (false, false) => format!("{cell:<w$}"),
                    }
                })
                .collect();
            cells.join("  ")
        })
        .collect()
}

/// `line` cut to `width` characters.
fn cut(line: &str, width: usize) -> &str {
    match line.char_indices().nth(width) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

/// A rate, or "-" without one.
fn opt(rate: Option<f64>) -> String {
    rate.map_or("-".into(), per_second)
}

/// A rate in at most six characters: 0, 0.5, 42, 9999, 12.3k, 1.23M.
fn per_second(v: f64) -> String {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
    if v == 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else if v < 10_000.0 {
        format!("{v:.0}")
    } else if v < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else if v < 1e9 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// Bits per second with an SI prefix.
fn bits(v: f64) -> String {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
    match v {
        v if v >= 1e9 => format!("{:.2} Gb/s", v / 1e9),
        v if v >= 1e6 => format!("{:.1} Mb/s", v / 1e6),
        v if v >= 1e3 => format!("{:.1} kb/s", v / 1e3),
        v => format!("{v:.0} b/s"),
    }
}

/// A gauge or total: an integer when it is one.
fn count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Seconds as `3d 4h`, `2h 5m`, `4m 7s` or `12s`.
fn duration(secs: f64) -> String {
    let s = if secs.is_finite() {
        secs.max(0.0) as u64
    } else {
        0
    };
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::openmetrics::parse;
    use super::super::state::State;
    use super::*;

    /// A scrape of the demo's shape: two services, one core; `k` scales the counters.
    fn scrape(k: f64, extra: &str) -> String {
        let c = |v: f64| v * k;
        format!(
            "sluice_rx_packets_total{{port=\"wire\",queue=\"0\"}} {}\n\
             sluice_tx_packets_total{{port=\"wire\",queue=\"0\"}} {}\n\
             sluice_dropped_packets_total{{reason=\"truncated\"}} 0\n\
             sluice_dropped_packets_total{{reason=\"unresolved_next_hop\"}} 18555\n\
             sluice_dropped_packets_total{{reason=\"tx_queue_full\"}} {}\n\
             sluice_service_packets_total{{service=\"web\"}} {}\n\
             sluice_service_packets_total{{service=\"dns\"}} {}\n\
             sluice_service_bytes_total{{service=\"web\"}} {}\n\
             sluice_service_bytes_total{{service=\"dns\"}} {}\n\
             sluice_backend_packets_total{{service=\"web\",backend=\"192.0.2.11\"}} {}\n\
             sluice_backend_packets_total{{service=\"web\",backend=\"192.0.2.12\"}} {}\n\
             sluice_backend_packets_total{{service=\"dns\",backend=\"192.0.2.21\"}} {}\n\
             sluice_backend_up{{service=\"web\",backend=\"192.0.2.11\"}} 1\n\
             sluice_backend_up{{service=\"web\",backend=\"192.0.2.12\"}} 0\n\
             sluice_backend_up{{service=\"dns\",backend=\"192.0.2.21\"}} 1\n\
             sluice_backend_flows{{service=\"web\",backend=\"192.0.2.11\"}} 8092\n\
             sluice_backend_flows{{service=\"web\",backend=\"192.0.2.12\"}} 0\n\
             sluice_backend_flows{{service=\"dns\",backend=\"192.0.2.21\"}} 3746\n\
             sluice_backend_weight{{service=\"web\",backend=\"192.0.2.11\"}} 100\n\
             sluice_backend_weight{{service=\"web\",backend=\"192.0.2.12\"}} 200\n\
             sluice_backend_weight{{service=\"dns\",backend=\"192.0.2.21\"}} 100\n\
             sluice_flows{{core=\"1\"}} 27338\n\
             sluice_worker_busy_seconds_total{{core=\"1\"}} {}\n\
             sluice_worker_bursts_total{{core=\"1\"}} {}\n\
             sluice_flows_created_total {}\n\
             sluice_flows_evicted_total{{reason=\"timeout\"}} {}\n\
             sluice_flows_evicted_total{{reason=\"capacity\"}} {}\n\
             sluice_flows_evicted_established_total {}\n\
             sluice_config_reloads_total{{result=\"success\"}} 2\n\
             sluice_config_reloads_total{{result=\"failure\"}} 1\n\
             sluice_config_epoch 8\n\
             sluice_table_info{{service=\"web\",fingerprint=\"67ca39b65836e116\"}} 1\n\
             sluice_build_info{{version=\"0.1.0\",dpdk=\"22.11.11\"}} 1\n\
             {extra}# EOF\n",
            c(300_000.0),
            c(290_000.0),
            c(20.0),
            c(200_000.0),
            c(90_000.0),
            c(8_000_000.0),
            c(6_000_000.0),
            c(150_000.0),
            c(50_000.0),
            c(90_000.0),
            c(0.4),
            c(20_000.0),
            c(1_000.0),
            c(700.0),
            c(50.0),
            c(3.0),
        )
    }

    fn sample(k: f64, extra: &str) -> Sample {
        Sample {
            metrics: parse(&scrape(k, extra)).unwrap(),
            state: Err("connection refused".into()),
            unix: 1000.0,
        }
    }

    /// The line of `frame` that starts with `start`.
    fn line<'a>(frame: &'a str, start: &str) -> &'a str {
        frame
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{frame}"))
    }

    fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn top_frame_shows_rates_over_the_interval() {
        // One second of counters at k=1, then k=3 two seconds later: every rate is the k=1 value.
        let frame = render(Some(&sample(1.0, "")), &sample(3.0, ""), 2.0, 200);
        assert!(
            frame.contains(
                "rx 300.0k pps   tx 290.0k pps   drops 20/s   flows 27338   new flows 1000/s   \
                 stateless -/s   evicted for room 50/s (3.0/s established)"
            ),
            "{frame}"
        );
        assert!(
            frame.contains("epoch 8   reloads 2 ok / 1 failed"),
            "{frame}"
        );
        assert!(frame.contains("sluice 0.1.0 (DPDK 22.11.11)"), "{frame}");
        assert!(frame.contains("tables   web 67ca39b65836e116"), "{frame}");
        assert!(frame.contains("/state: connection refused"), "{frame}");
        // web: 200k pps and 8 MB/s = 64 Mb/s; one of its two backends is up.
        assert_eq!(
            words(line(&frame, "web ")),
            ["web", "-", "-", "200.0k", "64.0", "Mb/s", "1/2"]
        );
        assert_eq!(
            words(line(&frame, "dns ")),
            ["dns", "-", "-", "90.0k", "48.0", "Mb/s", "1/1"]
        );
        assert_eq!(
            words(line(&frame, "192.0.2.11 ")),
            ["192.0.2.11", "web", "150.0k", "75.0", "8092", "up", "100"]
        );
        assert_eq!(
            words(line(&frame, "192.0.2.12 ")),
            ["192.0.2.12", "web", "50.0k", "25.0", "0", "DOWN", "200"]
        );
        // Busy 0.4 s per second is 40 %; 300k packets over 20k bursts is 15 per burst.
        assert_eq!(words(line(&frame, "1 ")), ["1", "40.0", "27338", "15.0"]);
        // Only the reasons that dropped something, the one dropping now first.
        assert_eq!(
            words(line(&frame, "tx_queue_full")),
            ["tx_queue_full", "20", "60"]
        );
        assert_eq!(
            words(line(&frame, "unresolved_next_hop")),
            ["unresolved_next_hop", "0", "18555"]
        );
        assert!(frame.find("tx_queue_full").unwrap() < frame.find("unresolved_next_hop").unwrap());
        assert!(!frame.contains("truncated"), "{frame}");
        assert!(!frame.contains("EXCEPTION"), "{frame}");
    }

    #[test]
    fn top_first_frame_has_totals_but_no_rates() {
        let frame = render(None, &sample(1.0, ""), 0.0, 200);
        assert!(
            frame.contains("rx - pps   tx - pps   drops -/s   flows 27338"),
            "{frame}"
        );
        assert_eq!(
            words(line(&frame, "192.0.2.11 ")),
            ["192.0.2.11", "web", "-", "-", "8092", "up", "100"]
        );
        assert_eq!(words(line(&frame, "1 ")), ["1", "-", "27338", "-"]);
        assert_eq!(
            words(line(&frame, "unresolved_next_hop")),
            ["unresolved_next_hop", "-", "18555"]
        );
    }

    #[test]
    fn top_shows_state_detail_exceptions_and_uptime_when_present() {
        let extra = "sluice_exception_packets_total{direction=\"to_kernel\"} 50\n\
                     sluice_start_time_seconds 820\n";
        let mut prev = sample(1.0, extra);
        let mut cur = sample(1.0, &extra.replace(" 50\n", " 80\n"));
        let state = State::parse(
            r#"{"services": [{"name": "web", "vip": "2001:db8::1", "port": 443,
                "protocol": "tcp", "forwarding": "gue", "backends": [{"address": "192.0.2.12",
                "health_check": {"kind": "http", "consecutive_fail": 3,
                "last_error": "status 503"}}]}]}"#,
        )
        .unwrap();
        prev.state = Ok(state.clone());
        cur.state = Ok(state);
        let frame = render(Some(&prev), &cur, 1.5, 200);
        assert!(frame.contains("uptime 3m 0s"), "{frame}");
        assert!(!frame.contains("/state:"), "{frame}");
        assert_eq!(
            words(line(&frame, "web ")),
            [
                "web",
                "[2001:db8::1]:443/tcp",
                "gue",
                "0",
                "0",
                "b/s",
                "1/2"
            ]
        );
        assert!(
            line(&frame, "192.0.2.12 ")
                .ends_with("DOWN      200  http check: 3 failed, status 503"),
            "{frame}"
        );
        assert_eq!(
            words(line(&frame, "direction=to_kernel")),
            ["direction=to_kernel", "20", "80"]
        );
    }

    #[test]
    fn top_cuts_lines_to_the_width_and_survives_a_reset() {
        // The appliance restarted between the polls: its counters went down.
        let frame = render(Some(&sample(3.0, "")), &sample(1.0, ""), 1.0, 40);
        assert!(frame.lines().all(|l| l.chars().count() <= 40), "{frame}");
        assert!(frame.contains("rx 300.0k pps"), "{frame}");
        assert!(render(None, &sample(1.0, ""), 0.0, 0)
            .lines()
            .all(str::is_empty));
    }

    #[test]
    fn top_formats_numbers() {
        assert_eq!(per_second(0.0), "0");
        assert_eq!(per_second(0.25), "0.2");
        assert_eq!(per_second(42.4), "42");
        assert_eq!(per_second(12_345.0), "12.3k");
        assert_eq!(per_second(2_500_000.0), "2.50M");
        assert_eq!(per_second(f64::NAN), "0");
        assert_eq!(bits(64e6), "64.0 Mb/s");
        assert_eq!(bits(1.5e9), "1.50 Gb/s");
        assert_eq!(count(3.0), "3");
        assert_eq!(count(1.5), "1.50");
        assert_eq!(duration(90_061.0), "1d 1h");
        assert_eq!(duration(-4.0), "0s");
    }
}
