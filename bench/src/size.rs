//! Byte-size arguments for the CLI: `4096`, `4KiB`, `16KiB`, `1MiB`, `1GiB`, ...
//!
//! Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`, and the shorthands `K`, `M`, `G`, `T`)
//! are powers of 1024; SI suffixes (`kB`, `MB`, `GB`, `TB`) are powers of 1000, because
//! that is what they mean and mixing them up silently skews a bandwidth number by 5-10%.
//! Suffixes are case-insensitive, may be separated from the number by spaces, and a
//! trailing `B` alone means bytes. Only whole numbers are accepted.

/// Parses a byte size such as `4KiB` or `1048576`. Usable directly as a clap `value_parser`.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "invalid size {input:?}: expected a number, e.g. 4KiB or 1048576"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|e| format!("invalid size {input:?}: bad number: {e}"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "invalid size {input:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, \
                 or SI kB, MB, GB, TB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {input:?}: overflows u64"))
}

/// Formats a byte count with the largest binary unit that divides it exactly
/// (`1073741824` -> `1GiB`, `1536` -> `1536B`), so it round-trips through [`parse_size`].
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return format!("{}{name}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size(" 512B "), Ok(512));
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1 gib"), Ok(1 << 30));
        assert_eq!(parse_size("3M"), Ok(3 << 20));
    }

    #[test]
    fn si_suffixes_are_decimal() {
        assert_eq!(parse_size("1kB"), Ok(1_000));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_size("").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("1 2").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216TiB").is_err(), "2^64 must overflow");
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(0), "0B");
        for n in [0, 1, 4096, 1 << 20, 3 << 30, 12_345] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
    }
}
