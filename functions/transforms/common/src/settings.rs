//! A stage's `(key, value)` settings.

/// The settings given to one call, with the checks every transform makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Wraps the pairs as received.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Builds settings from string pairs, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// Refuses a key that is not in `known` (a typo would otherwise be
    /// silently ignored) and a key given twice.
    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for (i, (key, _)) in self.pairs.iter().enumerate() {
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "unknown setting `{key}`; known settings: {}",
                    known.join(", ")
                ));
            }
            if self.pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(format!("setting `{key}` is given more than once"));
            }
        }
        Ok(())
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The comma-separated items of `key`, trimmed, empty ones skipped;
    /// empty if `key` is not given.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key).map_or_else(Vec::new, split_list)
    }
}

/// Splits a comma-separated list, trimming items and skipping empty ones.
pub fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_keys_are_refused() {
        let s = Settings::from_pairs(&[("paths", "a"), ("mdoe", "hash")]);
        let err = s.check_known(&["paths", "mode"]).unwrap_err();
        assert!(err.contains("`mdoe`"), "{err}");
        let s = Settings::from_pairs(&[("paths", "a"), ("paths", "b")]);
        assert!(
            s.check_known(&["paths"])
                .unwrap_err()
                .contains("more than once")
        );
        let s = Settings::from_pairs(&[("paths", "a")]);
        assert_eq!(s.check_known(&["paths", "mode"]), Ok(()));
    }

    #[test]
    fn lists_are_trimmed() {
        let s = Settings::from_pairs(&[("paths", " email, ,address.street ,")]);
        assert_eq!(s.list("paths"), ["email", "address.street"]);
        assert!(s.list("other").is_empty());
        assert_eq!(s.get("other"), None);
    }
}
