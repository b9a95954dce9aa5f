//! Reading the scripts' replies: small arrays of integers, checked for length, type and
//! range, so that a hostile or corrupted reply is a [`StoreError::BadReply`] and never a
//! panic or a wait of a hundred years.

use llm_retry_runtime::store::StoreError;
use redis::Value;
use std::time::Duration;

/// The longest duration a script answers: a wait, a retry-in or an open-for. The scripts never
/// hold anyone longer than a few days (their inputs are capped at [`MAX_SPAN`]); anything
/// above this is a corrupted reply.
const MAX_REPLY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest duration the store sends to a script: pauses, cooldowns, waits and lease
/// lifetimes are capped here, so that the scripts' arithmetic on times stays exact (well
/// under 2^53 microseconds).
pub(crate) const MAX_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest integer a script can send exactly (Lua numbers are doubles).
const MAX_EXACT: i64 = 1 << 53;

/// A script's reply: between `min` and `max` integers.
pub(crate) fn ints(v: &Value, min: usize, max: usize) -> Result<Vec<i64>, StoreError> {
    let Value::Array(items) = v else {
        return Err(bad("not an array"));
    };
    if items.len() < min || items.len() > max {
        return Err(bad(&format!("{} items where {min} to {max} were expected", items.len())));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Int(i) => Ok(*i),
            _ => Err(bad("an item is not an integer")),
        })
        .collect()
}

/// A count or an id: `0..=2^53`.
pub(crate) fn count(i: i64, what: &str) -> Result<u64, StoreError> {
    if (0..=MAX_EXACT).contains(&i) { u64::try_from(i).map_err(|_| bad(what)) } else { Err(bad(what)) }
}

/// A flag: 0 or 1.
pub(crate) fn flag(i: i64, what: &str) -> Result<bool, StoreError> {
    match i {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad(what)),
    }
}

/// A duration in microseconds: `0..=`[`MAX_REPLY`].
pub(crate) fn micros(i: i64, what: &str) -> Result<Duration, StoreError> {
    let d = u64::try_from(i).map(Duration::from_micros).map_err(|_| bad(what))?;
    if d > MAX_REPLY { Err(bad(what)) } else { Ok(d) }
}

/// A duration as the microseconds a script takes, capped at [`MAX_SPAN`].
pub(crate) fn to_micros(d: Duration) -> u64 {
    // MAX_SPAN is a week: its microseconds fit a u64 with room to spare.
    u64::try_from(d.min(MAX_SPAN).as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn bad(what: &str) -> StoreError {
    StoreError::BadReply(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arrays_of_integers_of_the_right_length_are_read() {
        let v = Value::Array(vec![Value::Int(0), Value::Int(5)]);
        assert_eq!(ints(&v, 2, 5), Ok(vec![0, 5]));
        assert!(matches!(ints(&v, 3, 5), Err(StoreError::BadReply(_))));
        assert!(matches!(ints(&v, 0, 1), Err(StoreError::BadReply(_))));
        assert!(ints(&Value::Int(3), 0, 5).is_err());
        assert!(ints(&Value::Nil, 0, 5).is_err());
        assert!(ints(&Value::BulkString(b"1".to_vec()), 0, 5).is_err());
        let mixed = Value::Array(vec![Value::Int(0), Value::BulkString(b"7".to_vec())]);
        assert!(ints(&mixed, 2, 2).is_err());
        let nested = Value::Array(vec![Value::Array(vec![])]);
        assert!(ints(&nested, 1, 1).is_err());
    }

    #[test]
    fn negative_or_huge_values_are_bad_replies() {
        assert_eq!(micros(1_500, "wait"), Ok(Duration::from_micros(1_500)));
        assert!(micros(-1, "wait").is_err());
        assert!(micros(i64::MAX, "wait").is_err());
        assert!(micros(i64::MIN, "wait").is_err());
        assert_eq!(count(7, "lease"), Ok(7));
        assert!(count(-7, "lease").is_err());
        assert!(count(i64::MAX, "lease").is_err());
        assert_eq!(flag(1, "f"), Ok(true));
        assert!(flag(2, "f").is_err());
    }

    #[test]
    fn durations_sent_are_capped() {
        assert_eq!(to_micros(Duration::from_millis(25)), 25_000);
        assert_eq!(to_micros(Duration::MAX), to_micros(MAX_SPAN));
        // What a script answers from capped inputs is always readable.
        assert!(micros(i64::try_from(to_micros(Duration::MAX)).unwrap() * 2, "x").is_ok());
    }
}
