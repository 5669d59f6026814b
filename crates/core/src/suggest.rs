//! "Did you mean" suggestions for misspelt names (keys, task ids, plugins).

/// The candidate closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= limit || (c.starts_with(word) && word.len() >= 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or an empty string.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_but_not_strangers() {
        let keys = ["plugin", "needs", "params", "retry"];
        assert_eq!(closest("neds", keys), Some("needs"));
        assert_eq!(closest("plugni", keys), Some("plugin"));
        assert_eq!(closest("zebra", keys), None);
        assert_eq!(did_you_mean("retyr", keys), " (did you mean `retry`?)");
        assert_eq!(did_you_mean("xyzzy", keys), "");
    }
}
