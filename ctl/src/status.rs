//! The status file the master keeps next to its pid file (`logs/proton.status`), rewritten
//! atomically about once a second and on every start and reload:
//!
//! ```json
//! {"pid":1234,"generation":2,"ir":"/abs/proton.ir","digest":"<64 hex>","started_unix":1795650000,
//!  "updated_unix":1795650123,"workers":[1235,1236],"active_connections":3}
//! ```

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug)]
pub struct Status {
    pub pid: i64,
    pub generation: u64,
    pub ir: String,
    pub digest: String,
    pub started_unix: Option<u64>,
    pub updated_unix: Option<u64>,
    pub workers: Vec<i64>,
    pub draining_workers: Option<u64>,
    pub active_connections: Option<u64>,
    /// The file as read, for `status --json`.
    pub raw: String,
}

pub fn read(path: &Path) -> Result<Status, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse(raw)
}

pub fn parse(raw: String) -> Result<Status, String> {
    let v: Value = serde_json::from_str(&raw).map_err(|e| format!("not JSON: {e}"))?;
    let pid = v
        .get("pid")
        .and_then(Value::as_i64)
        .ok_or("no \"pid\" number")?;
    let generation = v
        .get("generation")
        .and_then(Value::as_u64)
        .ok_or("no \"generation\" number")?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let num = |k: &str| v.get(k).and_then(Value::as_u64);
    let workers = v
        .get("workers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    Ok(Status {
        pid,
        generation,
        ir: text("ir"),
        digest: text("digest"),
        started_unix: num("started_unix"),
        updated_unix: num("updated_unix"),
        workers,
        draining_workers: num("draining_workers"),
        active_connections: num("active_connections"),
        raw,
    })
}

impl Status {
    /// The digest's first 16 hex digits.
    pub fn short_digest(&self) -> &str {
        self.digest.get(..16).unwrap_or(&self.digest)
    }

    /// The human form of `protonctl status` (`pid` is the one from the pid file).
    pub fn render(&self, pid: i32, now_unix: u64) -> String {
        let mut s = String::from("proton is running\n");
        let _ = writeln!(s, "master pid   {pid}");
        let list: Vec<String> = self.workers.iter().map(i64::to_string).collect();
        let _ = writeln!(
            s,
            "workers      {} ({})",
            list.join(" "),
            self.workers.len()
        );
        if let Some(d) = self.draining_workers.filter(|&d| d > 0) {
            let _ = writeln!(s, "draining     {d} old workers");
        }
        let _ = writeln!(s, "generation   {}", self.generation);
        let _ = writeln!(s, "ir           {}", self.ir);
        let _ = writeln!(s, "digest       {}", self.short_digest());
        let uptime = self.started_unix.map_or_else(
            || "?".to_string(),
            |t| human_duration(now_unix.saturating_sub(t)),
        );
        let _ = writeln!(s, "uptime       {uptime}");
        let conns = self
            .active_connections
            .map_or_else(|| "?".to_string(), |c| c.to_string());
        let _ = write!(s, "connections  {conns}");
        s
    }
}

/// `3725` → `1h 2m 5s`; `59` → `59s`; `90061` → `1d 1h 1m 1s`.
pub fn human_duration(secs: u64) -> String {
    let units = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let first = units
        .iter()
        .position(|&(n, _)| n > 0)
        .unwrap_or(units.len() - 1);
    units[first..]
        .iter()
        .map(|(n, u)| format!("{n}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(3723), "1h 2m 3s");
        assert_eq!(human_duration(3603), "1h 0m 3s");
        assert_eq!(human_duration(90061), "1d 1h 1m 1s");
    }

    #[test]
    fn parses_and_renders() {
        let raw = r#"{"pid":1234,"generation":2,"ir":"/abs/proton.ir","digest":"0123456789abcdef0123","started_unix":1000,"updated_unix":4000,"workers":[1235,1236],"draining_workers":0,"active_connections":3}"#;
        let st = parse(raw.to_string()).expect("valid status");
        assert_eq!((st.pid, st.generation), (1234, 2));
        assert_eq!(st.short_digest(), "0123456789abcdef");
        let text = st.render(1234, 1000 + 3723);
        assert!(text.contains("workers      1235 1236 (2)"), "{text}");
        assert!(text.contains("uptime       1h 2m 3s"), "{text}");
        assert!(text.contains("connections  3"), "{text}");
        assert!(!text.contains("draining"), "{text}");
        assert!(parse("{}".to_string()).is_err());
        assert!(parse("not json".to_string()).is_err());
        assert!(parse(r#"{"pid":1,"generation":1}"#.to_string()).is_ok());
    }
}
