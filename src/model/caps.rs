//! Linux capabilities as Docker names them.

/// A capability as Docker compares it: upper case, without `CAP_` (`net_raw` and
/// `CAP_NET_RAW` are `NET_RAW`; `all` is `ALL`).
pub fn normalize_cap(cap: &str) -> String {
    let up = cap.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}
