//! `{{ name }}` templates, as in component variables
//! (`"https://{{ api_host }}/v1"`) and `allowed_outbound_hosts`.
//!
//! One parser serves both places that read templates: the manifest check
//! (every name must be an application variable) and the expansion at
//! startup ([`crate::variables`]), so the two can never disagree about what
//! a template refers to. Parsing is lazy, part by part, so each reader
//! reports the first problem in the order it appears in the text.

/// One piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    /// Text copied as it is.
    Literal(&'a str),
    /// `{{ name }}`: the name, without the surrounding spaces.
    Variable(&'a str),
}

/// A `{{` without its `}}`; nothing after it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unclosed {{{{ in template")]
pub(crate) struct Unclosed;

/// The parts of `template`, in order; an unclosed `{{` ends them with an
/// error.
pub(crate) fn parts(template: &str) -> Parts<'_> {
    Parts { rest: template }
}

/// Iterator returned by [`parts`].
#[derive(Debug, Clone)]
pub(crate) struct Parts<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Parts<'a> {
    type Item = Result<Part<'a>, Unclosed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(start) = self.rest.find("{{") else {
            return Some(Ok(Part::Literal(std::mem::take(&mut self.rest))));
        };
        if start > 0 {
            let (literal, rest) = self.rest.split_at(start);
            self.rest = rest;
            return Some(Ok(Part::Literal(literal)));
        }
        let after = &self.rest[2..];
        match after.find("}}") {
            Some(end) => {
                self.rest = &after[end + 2..];
                Some(Ok(Part::Variable(after[..end].trim())))
            }
            None => {
                self.rest = "";
                Some(Err(Unclosed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(template: &str) -> Vec<Result<Part<'_>, Unclosed>> {
        parts(template).collect()
    }

    #[test]
    fn literals_and_variables_in_order() {
        use Part::{Literal, Variable};
        assert_eq!(all(""), vec![]);
        assert_eq!(all("plain"), vec![Ok(Literal("plain"))]);
        assert_eq!(
            all("https://{{ host }}:{{port}}/v1"),
            vec![
                Ok(Literal("https://")),
                Ok(Variable("host")),
                Ok(Literal(":")),
                Ok(Variable("port")),
                Ok(Literal("/v1")),
            ]
        );
        assert_eq!(all("{{}}"), vec![Ok(Variable(""))]);
        assert_eq!(all("a }} b"), vec![Ok(Literal("a }} b"))]);
        assert_eq!(all("{{{ x }}"), vec![Ok(Variable("{ x"))]);
    }

    #[test]
    fn an_unclosed_brace_ends_the_parts() {
        assert_eq!(
            all("{{ a }} and {{ b"),
            vec![
                Ok(Part::Variable("a")),
                Ok(Part::Literal(" and ")),
                Err(Unclosed)
            ]
        );
        assert_eq!(Unclosed.to_string(), "unclosed {{ in template");
    }
}
