//! Request metrics in the Prometheus text format, labelled by matched route
//! (never the raw path, so ids do not explode the label set).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// (route, method, status).
type Key = (String, String, u16);

#[derive(Default)]
pub struct RequestMetrics {
    /// Requests and their total seconds, by key.
    requests: Mutex<BTreeMap<Key, (u64, f64)>>,
}

impl RequestMetrics {
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut map = self.requests.lock().expect("metrics lock");
        let entry = map
            .entry((route.to_string(), method.to_string(), status))
            .or_default();
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    /// `<prefix>_requests_total` and `<prefix>_request_duration_seconds`
    /// (sum and count), followed by `extra` lines.
    pub fn render(&self, prefix: &str, extra: &[(&str, &str, u64)]) -> String {
        let map = self.requests.lock().expect("metrics lock");
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE {prefix}_requests_total counter");
        for ((route, method, status), (n, _)) in map.iter() {
            let _ = writeln!(
                out,
                "{prefix}_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE {prefix}_request_duration_seconds summary");
        for ((route, method, status), (n, secs)) in map.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            let _ = writeln!(
                out,
                "{prefix}_request_duration_seconds_sum{{{labels}}} {secs}"
            );
            let _ = writeln!(
                out,
                "{prefix}_request_duration_seconds_count{{{labels}}} {n}"
            );
        }
        for (name, kind, value) in extra {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_summaries() {
        let m = RequestMetrics::default();
        m.record("/a/{id}", "GET", 200, Duration::from_millis(500));
        m.record("/a/{id}", "GET", 200, Duration::from_millis(500));
        let text = m.render("av_x", &[("av_x_things_total", "counter", 3)]);
        assert!(
            text.contains("av_x_requests_total{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 2")
        );
        assert!(text.contains(
            "av_x_request_duration_seconds_sum{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 1"
        ));
        assert!(text.contains("av_x_things_total 3"));
    }
}
