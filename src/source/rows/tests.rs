use super::parse_amount;
use rust_decimal::Decimal;
use std::str::FromStr;

#[test]
fn amounts_are_exact_with_the_mappings_separators() {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    assert_eq!(parse_amount("1234.56", '.', None), Some(d("1234.56")));
    assert_eq!(
        parse_amount(" 1.234,56 ", ',', Some('.')),
        Some(d("1234.56"))
    );
    assert_eq!(parse_amount("125.00-", '.', None), Some(d("-125.00")));
    assert_eq!(parse_amount("-0.10", '.', None), Some(d("-0.10")));
    // 0.1 + 0.2 is 0.3, not binary floating point noise
    let sum = parse_amount("0.1", '.', None).unwrap() + parse_amount("0.2", '.', None).unwrap();
    assert_eq!(sum, d("0.3"));
    for bad in ["", "abc", "1e5", "--1", "1.2.3"] {
        assert_eq!(parse_amount(bad, '.', None), None, "{bad}");
    }
}
