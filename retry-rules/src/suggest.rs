//! "Did you mean": the closest valid name to a misspelt one, for the attribute's compile errors
//! and configuration files' errors alike.
//!
//! ```
//! use llm_retry_rules::suggest::did_you_mean;
//! assert_eq!(did_you_mean("max_dely", ["max", "max_delay"]), "; did you mean `max_delay`?");
//! ```

/// The candidate closest to `input` by edit distance (case-insensitive), if it is close
/// enough to be a plausible typo, or the one that `input` abbreviates (`expo`).
///
/// ```
/// use llm_retry_rules::suggest::closest;
/// assert_eq!(closest("expo", ["exponential", "fixed"]), Some("exponential"));
/// assert_eq!(closest("RateLimit", ["RateLimited", "Timeout"]), Some("RateLimited"));
/// assert_eq!(closest("parsecs", ["max", "base"]), None);
/// ```
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    let mut prefixed =
        candidates.clone().into_iter().filter(|c| lower.len() >= 3 && c.to_ascii_lowercase().starts_with(&lower));
    if let (Some(c), None) = (prefixed.next(), prefixed.next()) {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean `x`?" or "".
///
/// ```
/// assert_eq!(llm_retry_rules::suggest::did_you_mean("banana", ["max"]), "");
/// ```
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    closest(input, candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// Levenshtein distance, for names of a few dozen characters (longer input is cut there).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["max", "max_delay", "base"];
        assert_eq!(closest("max_dely", keys), Some("max_delay"));
        assert_eq!(closest("MAX", keys), Some("max"));
        assert_eq!(closest("parsecs", keys), None);
        assert_eq!(closest("expo", ["exponential", "fixed"]), Some("exponential"));
        assert_eq!(closest("bas", keys), Some("base"));
        let kinds = ["RateLimited", "Connection", "Timeout"];
        assert_eq!(closest("ratelimited", kinds), Some("RateLimited"));
        assert_eq!(closest("Conection", kinds), Some("Connection"));
        assert_eq!(closest("Banana", kinds), None);
    }
}
