//! Turning command-line text into ledger values: keys, amounts, maturities,
//! invoice references, discount rates, token ids.
//!
//! Each error names the input and shows an example of what is expected.
//! Amounts are parsed only once the chain's decimals are known (from the
//! node), so they stay text until then.

use std::path::Path;

use anyhow::{Context, bail};
use crypto::{Hash, Keypair, PublicKey};
use ledger::{Amount, Timestamp, TokenId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A participant's key on the command line: 64 hex digits, or the path of a
/// key file (only its public half is used).
pub fn public_key(text: &str) -> anyhow::Result<PublicKey> {
    let trimmed = text.trim();
    if let Ok(key) = trimmed.parse::<PublicKey>() {
        return Ok(key);
    }
    let path = Path::new(trimmed);
    if path.is_file() {
        return Ok(read_key(path)?.public());
    }
    bail!(
        "{text:?} is neither a public key (64 hex digits, as printed by `scf keys show FILE`) nor a key file"
    )
}

/// Reads a signing key, saying how to get one when the file is missing.
pub fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    genesis::read_key_file(path).map_err(|error| match error {
        genesis::KeyFileError::Read { ref error, .. }
            if error.kind() == std::io::ErrorKind::NotFound =>
        {
            anyhow::anyhow!(
                "key file {} does not exist: check the path, or create a key with `scf keys new --out {}` and have an operator register it",
                path.display(),
                path.display()
            )
        }
        genesis::KeyFileError::Read { ref error, .. } => anyhow::anyhow!(
            "key file {} is unreadable ({error}): check its permissions (it should be yours, mode 0600)",
            path.display()
        ),
        other => anyhow::anyhow!("{other}"),
    })
}

pub fn token_id(text: &str) -> anyhow::Result<TokenId> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "{text:?} is not a token id (64 hex digits, as printed by `scf token list --holder KEY`)"
        )
    })
}

/// A decimal amount with the chain's decimals: "1000000.00".
pub fn amount(text: &str, decimals: u8) -> anyhow::Result<Amount> {
    let amount = Amount::parse_decimal(text, decimals)?;
    if amount == Amount::ZERO {
        bail!("amount {text:?} is zero; amounts must be greater than zero");
    }
    Ok(amount)
}

/// A maturity: a date ("2027-03-31", midnight UTC) or an RFC 3339 time
/// ("2027-03-31T12:00:00Z", "2027-03-31T12:00:00+08:00").
pub fn maturity(text: &str) -> anyhow::Result<Timestamp> {
    let trimmed = text.trim();
    let moment = if let Ok(moment) = OffsetDateTime::parse(trimmed, &Rfc3339) {
        moment
    } else {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(trimmed, &format).with_context(|| {
            format!(
                "maturity {text:?} is neither a date like 2027-03-31 nor an RFC 3339 time like 2027-03-31T12:00:00Z"
            )
        })?;
        date.midnight().assume_utc()
    };
    let millis = moment.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(millis)
        .map(Timestamp)
        .map_err(|_| anyhow::anyhow!("maturity {text:?} is before 1970"))
}

/// The invoice reference a confirmation records: SHA-256 of the invoice
/// text as given ("INV-001"), or the hash itself when 64 hex digits are given.
/// Hashing keeps invoice numbers off the shared ledger while still letting
/// each invoice be confirmed only once.
pub fn invoice_ref(text: &str) -> anyhow::Result<Hash> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("the invoice reference is empty; give the invoice number, e.g. --invoice INV-001");
    }
    if trimmed.len() == 64
        && let Ok(hash) = trimmed.parse::<Hash>()
    {
        return Ok(hash);
    }
    Ok(Hash::digest(trimmed.as_bytes()))
}

/// A yearly discount rate in percent ("4.35") as basis points (435).
pub fn rate_bps(text: &str) -> anyhow::Result<u32> {
    let error = || {
        anyhow::anyhow!(
            "rate {text:?} is not a yearly percentage with at most two decimals, e.g. 4.35"
        )
    };
    let amount =
        Amount::parse_decimal(text.trim().trim_end_matches('%'), 2).map_err(|_| error())?;
    if amount.0 >= 10_000 {
        bail!("rate {text:?} is 100 % or more a year; give a percentage such as 4.35");
    }
    u32::try_from(amount.0).map_err(|_| error())
}

/// Now, as the ledger counts time.
pub fn now() -> Timestamp {
    let millis = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    Timestamp(u64::try_from(millis).unwrap_or(0))
}

/// A time as RFC 3339 (what the API prints too).
pub fn format_time(time: Timestamp) -> String {
    node::api::types::format_time(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_midnight_utc() {
        assert_eq!(
            maturity("2027-03-31").unwrap(),
            Timestamp(1_806_451_200_000)
        );
        assert_eq!(
            maturity("2027-03-31T08:00:00+08:00").unwrap(),
            Timestamp(1_806_451_200_000)
        );
        assert!(maturity("31/03/2027").is_err());
    }

    #[test]
    fn invoice_text_is_hashed_and_a_hash_is_kept() {
        let hash = invoice_ref("INV-001").unwrap();
        assert_eq!(hash, Hash::digest(b"INV-001"));
        assert_eq!(invoice_ref(&hash.to_hex()).unwrap(), hash);
        assert!(invoice_ref("  ").is_err());
    }

    #[test]
    fn rates_are_basis_points() {
        assert_eq!(rate_bps("4.35").unwrap(), 435);
        assert_eq!(rate_bps("5").unwrap(), 500);
        assert_eq!(rate_bps("0.5%").unwrap(), 50);
        assert!(rate_bps("4.355").is_err());
        assert!(rate_bps("100").is_err());
        assert!(rate_bps("-1").is_err());
    }

    #[test]
    fn zero_amounts_are_refused() {
        assert_eq!(amount("12.50", 2).unwrap(), Amount(1250));
        assert!(amount("0.00", 2).is_err());
        assert!(amount("1.234", 2).is_err());
    }
}
