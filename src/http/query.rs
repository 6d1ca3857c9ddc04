//! Query strings, parsed strictly: an endpoint names what it accepts and anything else is a 400.

use super::response::HttpError;

/// The decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses and checks `raw` against the names an endpoint accepts; each may appear once.
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Self, HttpError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if !accepted.contains(&name.as_str()) {
                let takes = match accepted {
                    [] => "none".to_owned(),
                    names => names.join(", "),
                };
                return Err(HttpError::bad_request(format!(
                    "unknown query parameter {}: this endpoint takes {takes}",
                    crate::logging::quoted(&name)
                )));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(HttpError::bad_request(format!(
                    "query parameter {} is given more than once",
                    crate::logging::quoted(&name)
                )));
            }
            pairs.push((name, value));
        }
        Ok(Query(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The parameter parsed with `FromStr`, `None` when absent; a bad value is a 400 that names
    /// the parameter and repeats the parser's reason.
    pub(crate) fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, HttpError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|err| HttpError::bad_request(format!("invalid {name}: {err}")))
            })
            .transpose()
    }
}

/// Percent-decoding (and `+` as space), refusing malformed escapes and invalid UTF-8.
fn decode(text: &str) -> Result<String, HttpError> {
    let malformed = || {
        HttpError::bad_request(format!(
            "malformed query string near {}",
            crate::logging::quoted(text)
        ))
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2).ok_or_else(malformed)?;
                let hex = std::str::from_utf8(hex).map_err(|_| malformed())?;
                bytes.push(u8::from_str_radix(hex, 16).map_err(|_| malformed())?);
                rest = &rest[2..];
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_accepted_names() {
        let query = Query::parse(
            Some("window=30d&from=2026-11-01T00%3A00%3A00Z&x=a+b"),
            &["window", "from", "x"],
        )
        .unwrap();
        let pairs = [
            ("window", "30d"),
            ("from", "2026-11-01T00:00:00Z"),
            ("x", "a b"),
        ];
        let expected = pairs.map(|(name, value)| (name.to_owned(), value.to_owned()));
        assert_eq!(query, Query(expected.to_vec()));
    }

    #[test]
    fn refuses_unknown_repeated_and_malformed() {
        let message =
            |raw, accepted: &[&str]| Query::parse(Some(raw), accepted).unwrap_err().message;
        assert_eq!(
            message("foo=1", &[]),
            "unknown query parameter \"foo\": this endpoint takes none"
        );
        assert_eq!(
            message("a=1&a=2", &["a"]),
            "query parameter \"a\" is given more than once"
        );
        assert_eq!(
            message("a=%zz", &["a"]),
            "malformed query string near \"%zz\""
        );
        assert_eq!(
            message("a=%ff", &["a"]),
            "malformed query string near \"%ff\""
        );
        assert_eq!(
            message("a=%4", &["a"]),
            "malformed query string near \"%4\""
        );
    }

    #[test]
    fn empty_is_fine() {
        assert_eq!(Query::parse(None, &[]).unwrap(), Query::default());
        assert_eq!(Query::parse(Some(""), &[]).unwrap(), Query::default());
        assert_eq!(Query::parse(Some("&&"), &[]).unwrap(), Query::default());
    }
}
