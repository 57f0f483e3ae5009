//! The HTML report: one page, no scripts, no outside resources; charts are inline SVG.

use std::fmt::Write as _;

use super::{Report, mib};
use crate::scenarios::Outcome;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn html_page(report: &Report) -> String {
    let run = &report.run;
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Calamus benchmark</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.grid{{display:flex;flex-wrap:wrap;gap:18px}}\
         .card{{border:1px solid #ddd;padding:8px}}.note{{color:#555;font-size:12px}}.bad{{color:#b00}}\
         </style></head><body><h1>Calamus benchmark</h1>"
    );
    let _ = write!(
        page,
        "<p>Server {} ({} backend), commit {}; {} logical CPUs ({}), {} memory. Settings: {} iterations, \
         {} warm-up, concurrency {}, per-user counts {:?} x {} rows, {} subscribers.</p>\
         <p>Server resident memory: idle {}, peak {}.</p>",
        esc(&run.server_url),
        esc(&run.backend),
        esc(run.commit.as_deref().unwrap_or("unknown")),
        run.cpus,
        esc(run.cpu_model.as_deref().unwrap_or("unknown CPU")),
        mib(run.memory_total_bytes),
        run.settings.iterations,
        run.settings.warmup,
        run.settings.concurrency,
        run.settings.user_counts,
        run.settings.rows_per_user,
        run.settings.subscribers,
        mib(report.idle_rss_bytes),
        mib(report.peak_rss_bytes),
    );
    page.push_str(&summary_table(report));
    for (scenario, why) in &report.failures {
        let _ = write!(page, "<p class=\"bad\">{} failed: {}</p>", esc(scenario), esc(why));
    }
    page.push_str("<h2>Latency histograms</h2><div class=\"grid\">");
    for outcome in &report.outcomes {
        page.push_str(&histogram_card(outcome));
    }
    page.push_str("</div><h2>Server memory</h2>");
    page.push_str(&memory_chart(&report.memory_samples));
    page.push_str("</body></html>\n");
    page
}

fn summary_table(report: &Report) -> String {
    let mut t = String::from(
        "<table><tr><th>scenario</th><th>operation</th><th>c</th><th>ops</th><th>mean ms</th><th>p50 ms</th>\
         <th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>ops/s</th><th>rows/s</th><th>limit</th>\
         <th>of limit</th><th>PostgreSQL p50 ms</th><th>vs PostgreSQL</th><th>peak RSS</th><th>notes</th></tr>",
    );
    for o in &report.outcomes {
        let s = &o.summary;
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td>\
             <td>{:.3}</td><td>{:.3}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"note\">{}</td></tr>",
            esc(&o.scenario),
            esc(&o.operation),
            o.concurrency,
            s.operations,
            s.mean_ms,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.max_ms,
            s.ops_per_sec,
            s.rows_per_sec,
            o.limit.as_ref().map_or(String::new(), |l| format!(
                "{} ({:.0} ops/s)",
                esc(&l.name),
                l.ops_per_sec
            )),
            o.of_limit.map_or(String::new(), |f| format!("{:.1}%", f * 100.0)),
            o.postgres
                .as_ref()
                .map_or(String::new(), |p| format!("{:.3}", p.p50_ms)),
            o.postgres_p50_ratio.map_or(String::new(), |r| format!("{r:.2}x")),
            o.peak_rss_bytes.map_or(String::new(), |b| mib(Some(b))),
            esc(&o.notes.join("; ")),
        );
    }
    t.push_str("</table>");
    t
}

/// One scenario's latency histogram: a bar per bucket, log-spaced bucket bounds.
fn histogram_card(outcome: &Outcome) -> String {
    const W: f64 = 320.0;
    const H: f64 = 120.0;
    let buckets = &outcome.summary.histogram;
    let mut svg = format!(
        "<div class=\"card\"><b>{}</b> <span class=\"note\">p50 {:.3} ms, p99 {:.3} ms</span><br>\
         <svg width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\">",
        esc(&outcome.scenario),
        outcome.summary.p50_ms,
        outcome.summary.p99_ms,
        H + 30.0,
        H + 30.0
    );
    let max = buckets.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1) as f64;
    let width = W / buckets.len().max(1) as f64;
    for (i, &(bound, count)) in buckets.iter().enumerate() {
        let h = count as f64 / max * H;
        let x = i as f64 * width;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#4a7bd0\"><title>&le; {bound:.3} ms: {count}</title></rect>",
            H - h,
            (width - 1.0).max(1.0)
        );
        // A label every few buckets.
        if i % 4 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"9\">{}</text>",
                H + 12.0,
                short_ms(bound)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"9\" fill=\"#555\">latency, ms (bucket upper bounds)</text></svg></div>",
        H + 26.0
    );
    svg
}

fn short_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// The server's resident memory over the run.
fn memory_chart(samples: &[(f64, u64)]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    let Some(&(last_t, _)) = samples.last() else {
        return "<p class=\"note\">The server did not report its memory (system.stats has no memory_rss_bytes).</p>"
            .into();
    };
    let max = samples.iter().map(|&(_, b)| b).max().unwrap_or(1).max(1) as f64;
    let points: Vec<String> = samples
        .iter()
        .map(|&(t, b)| format!("{:.1},{:.1}", t / last_t.max(1e-9) * W, H - b as f64 / max * H))
        .collect();
    format!(
        "<svg width=\"{W}\" height=\"{}\"><polyline fill=\"none\" stroke=\"#d0704a\" stroke-width=\"1.5\" points=\"{}\"/>\
         <text x=\"0\" y=\"12\" font-size=\"10\">{:.1} MiB</text><text x=\"0\" y=\"{}\" font-size=\"10\">0 s</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"10\">{last_t:.0} s</text></svg>",
        H + 16.0,
        points.join(" "),
        max / 1048576.0,
        H + 14.0,
        W - 40.0,
        H + 14.0
    )
}
