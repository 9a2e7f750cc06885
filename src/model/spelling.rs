//! The nearest known word to a misspelt one, for "did you mean …?" hints.

/// Levenshtein distance between two words, by characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The known word `word` most likely misspells: the shortest one it begins (`NET_BIND` →
/// `NET_BIND_SERVICE`), else the closest by edit distance when that is at most a third of
/// the word's length (at least 2). `None` when nothing is close.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    if word.len() >= 3
        && let Some(k) = known.iter().filter(|k| k.starts_with(word)).min_by_key(|k| k.len())
    {
        return Some(k);
    }
    let limit = (word.chars().count() / 3).max(2);
    known.iter().map(|k| (distance(word, k), *k)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("usr", "user"), 1);
        assert_eq!(distance("chwon", "chown"), 2);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_nearest_word_by_prefix_then_by_distance() {
        let keys = ["day", "user", "chown", "cap_add", "cap_drop", "NET_BIND_SERVICE", "NET_ADMIN"];
        assert_eq!(nearest("usr", &keys), Some("user"));
        assert_eq!(nearest("chwon", &keys), Some("chown"));
        assert_eq!(nearest("cap_dorp", &keys), Some("cap_drop"));
        assert_eq!(nearest("NET_BIND", &keys), Some("NET_BIND_SERVICE"));
        assert_eq!(nearest("NET_ADMN", &keys), Some("NET_ADMIN"));
        assert_eq!(nearest("colour", &keys), None);
    }
}
