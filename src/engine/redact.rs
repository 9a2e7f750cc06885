//! Environment values never leave unroot: text from a container (its log) has every value of
//! the container's environment replaced by `<redacted>` before anyone sees or stores it.

/// What replaces a value.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are replaced only where they stand as a whole word (a `1`, `yes`
/// or `db` must not blank out every digit and syllable of a log); longer ones wherever they
/// appear.
const WHOLE_WORD_BELOW: usize = 6;

/// Whether `value` is replaced wherever it appears (else only where it stands as a word).
pub fn is_long(value: &str) -> bool {
    value.chars().count() >= WHOLE_WORD_BELOW
}

/// The values of `env` entries (`KEY=VALUE`), longest first, without empty ones.
pub fn env_values(env: &[String]) -> Vec<String> {
    let mut values: Vec<String> =
        env.iter().filter_map(|e| e.split_once('=').map(|(_, v)| v.to_string())).filter(|v| !v.is_empty()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replaces every value of `values` in `text` by [`REDACTED`].
pub fn redact(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for v in values {
        if v.chars().count() >= WHOLE_WORD_BELOW {
            out = out.replace(v.as_str(), REDACTED);
            continue;
        }
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(v.as_str()) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + v.len()..].chars().next();
            result.push_str(&rest[..at]);
            if before.is_none_or(|c| !is_word(c)) && after.is_none_or(|c| !is_word(c)) {
                result.push_str(REDACTED);
            } else {
                result.push_str(v);
            }
            rest = &rest[at + v.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_replaced_and_short_ones_only_as_words() {
        let env = ["DB_PASSWORD=s3cr3t-pass".to_string(), "MODE=1".into(), "EMPTY=".into(), "NAME=db".into()];
        let values = env_values(&env);
        assert_eq!(values, ["s3cr3t-pass", "db", "1"]);
        let text = "connecting to db as admin with s3cr3t-pass (mode 1, attempt 12, dbname=x)";
        assert_eq!(
            redact(text, &values),
            "connecting to <redacted> as admin with <redacted> (mode <redacted>, attempt 12, dbname=x)"
        );
    }
}
