//! Money and time as the ledger sees them: integer minor units and UTC Unix
//! milliseconds.
//!
//! Amounts never touch floating point. Parsing and printing decimals (for the
//! CLI and API) take the chain's number of decimals from genesis.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};

/// An amount in minor units (fen, cents). Arithmetic is checked: an overflow
/// is an error, never a wrap.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Amount(pub u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Formats with `decimals` digits after the point: `Amount(123456)` with
    /// 2 decimals is `"1234.56"`.
    pub fn to_decimal_string(self, decimals: u8) -> String {
        if decimals == 0 {
            return self.0.to_string();
        }
        let scale = 10u64.pow(u32::from(decimals));
        format!(
            "{}.{:0width$}",
            self.0 / scale,
            self.0 % scale,
            width = usize::from(decimals)
        )
    }

    /// Parses `"1234.56"` (at most `decimals` digits after the point).
    pub fn parse_decimal(text: &str, decimals: u8) -> Result<Amount, AmountParseError> {
        let error = |reason: &'static str| AmountParseError {
            input: text.to_string(),
            decimals,
            reason,
        };
        let text_trimmed = text.trim();
        let (whole, fraction) = match text_trimmed.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text_trimmed, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("expected digits before the decimal point"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("expected digits after the decimal point"));
        }
        if fraction.len() > usize::from(decimals) {
            return Err(error("too many digits after the decimal point"));
        }
        let scale = 10u64.pow(u32::from(decimals));
        let whole: u64 = whole
            .parse()
            .map_err(|_| error("the amount is too large"))?;
        let mut fraction_units: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().expect("checked digits")
        };
        fraction_units *= 10u64.pow((usize::from(decimals) - fraction.len()) as u32);
        whole
            .checked_mul(scale)
            .and_then(|units| units.checked_add(fraction_units))
            .map(Amount)
            .ok_or_else(|| error("the amount is too large"))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A decimal amount that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid amount {input:?}: {reason} (expected a number such as 1234.56 with at most {decimals} decimals)"
)]
pub struct AmountParseError {
    pub input: String,
    pub decimals: u8,
    pub reason: &'static str,
}

/// A point in time: milliseconds since the Unix epoch, UTC. Ledger rules read
/// time only from the block header, never from a clock.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const MILLIS_PER_DAY: u64 = 86_400_000;

    /// Whole days from `self` until `later`, rounded up (a part day counts as
    /// a day of interest); zero if `later` is not after `self`.
    pub fn days_until(self, later: Timestamp) -> u64 {
        later
            .0
            .saturating_sub(self.0)
            .div_ceil(Self::MILLIS_PER_DAY)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip() {
        assert_eq!(Amount::parse_decimal("1234.56", 2), Ok(Amount(123_456)));
        assert_eq!(Amount::parse_decimal("1234.5", 2), Ok(Amount(123_450)));
        assert_eq!(Amount::parse_decimal("1234", 2), Ok(Amount(123_400)));
        assert_eq!(Amount(123_456).to_decimal_string(2), "1234.56");
        assert_eq!(Amount(5).to_decimal_string(2), "0.05");
        assert_eq!(Amount(5).to_decimal_string(0), "5");
    }

    #[test]
    fn bad_decimals_are_refused_with_the_reason() {
        assert_eq!(
            Amount::parse_decimal("1.234", 2).unwrap_err().reason,
            "too many digits after the decimal point"
        );
        assert!(Amount::parse_decimal("-1", 2).is_err());
        assert!(Amount::parse_decimal("1e5", 2).is_err());
        assert!(Amount::parse_decimal("", 2).is_err());
        assert_eq!(
            Amount::parse_decimal("184467440737095516.16", 2)
                .unwrap_err()
                .reason,
            "the amount is too large"
        );
    }

    #[test]
    fn days_until_rounds_part_days_up() {
        let day = Timestamp::MILLIS_PER_DAY;
        assert_eq!(Timestamp(0).days_until(Timestamp(day)), 1);
        assert_eq!(Timestamp(0).days_until(Timestamp(day + 1)), 2);
        assert_eq!(Timestamp(5).days_until(Timestamp(5)), 0);
        assert_eq!(Timestamp(10).days_until(Timestamp(5)), 0);
    }
}
