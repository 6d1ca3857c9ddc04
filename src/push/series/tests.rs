//! Unit tests of the series of a sample.

use super::*;

#[test]
fn a_label_needs_a_name_and_a_value() {
    assert_eq!(
        parse_label("site=berlin"),
        Ok(("site".into(), "berlin".into()))
    );
    assert!(parse_label("site").is_err());
}
