//! The content cache (`proxy_cache_path`, `proxy_cache`): responses stored as files, found
//! through an index in memory shared by every worker.

/// What the cache did for a request (`$upstream_cache_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Miss = 1,
    Bypass,
    Expired,
    Stale,
    Updating,
    Revalidated,
    Hit,
}

/// The text of `$upstream_cache_status` for a request's status byte (0: empty, no cache).
pub fn status_name(s: u8) -> &'static str {
    match s {
        1 => "MISS",
        2 => "BYPASS",
        3 => "EXPIRED",
        4 => "STALE",
        5 => "UPDATING",
        6 => "REVALIDATED",
        7 => "HIT",
        _ => "",
    }
}

pub mod control;
pub mod file;
pub mod hot;
pub mod index;
pub mod keeper;
