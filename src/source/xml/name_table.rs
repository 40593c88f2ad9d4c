//! The local names of a mapping's paths, numbered: an element's name is looked up once
//! in a small open-addressing table, then compared as a number with every path step.

use super::syntax::is_xml_name;

/// No name of the mapping's paths.
pub(super) const NO_ID: u32 = u32::MAX;

/// The local names of the mapping's element steps, numbered, so that an element's name
/// is looked up once and then compared as a number with each path step.
#[derive(Debug, Default)]
pub(super) struct NameIds {
    /// Open addressing, a power of two long; `NO_ID` marks a free entry.
    table: Vec<(u32, Box<[u8]>)>,
    pub(super) names: Vec<Box<[u8]>>,
    /// Per name: whether it is an XML name (checked once, not at every element).
    pub(super) xml: Vec<bool>,
}

/// A hash of a name from its length and three of its bytes: O(1) per element, and
/// enough to tell a mapping's few names apart (the table compares the names anyway).
#[inline]
fn name_hash(b: &[u8]) -> usize {
    let Some(&last) = b.last() else {
        return 0;
    };
    let x = (b.len() as u32) << 24 | u32::from(b[0]) << 16 | u32::from(b[b.len() / 2]) << 8;
    ((x | u32::from(last)).wrapping_mul(0x9E37_79B1) >> 7) as usize
}

/// `a == b`, without a call to `memcmp` for the usual short names.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word =
            |x: &[u8], i: usize| u64::from_le_bytes(x[i..i + 8].try_into().expect("8 bytes"));
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

impl NameIds {
    /// The number of `name`, given a new one when it has none.
    pub(super) fn intern(&mut self, name: &[u8]) -> u32 {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.into());
                (self.names.len() - 1) as u32
            }
        }
    }

    pub(super) fn build(&mut self) {
        let size = (self.names.len() * 4).next_power_of_two().max(8);
        self.table = vec![(NO_ID, Box::default()); size];
        for (id, n) in self.names.iter().enumerate() {
            let mut i = name_hash(n) & (size - 1);
            while self.table[i].0 != NO_ID {
                i = (i + 1) & (size - 1);
            }
            self.table[i] = (id as u32, n.clone());
        }
        self.xml = self.names.iter().map(|n| is_xml_name(n)).collect();
    }

    #[inline]
    pub(super) fn get(&self, name: &[u8]) -> u32 {
        let mask = self.table.len() - 1;
        let mut i = name_hash(name) & mask;
        loop {
            let (id, n) = &self.table[i];
            if *id == NO_ID || same_name(n, name) {
                return *id;
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_by_number() {
        let mut ids = NameIds::default();
        let names: Vec<&[u8]> = vec![
            b"InvoiceNo",
            b"InvoiceDate",
            b"Line",
            b"LineNo",
            b"LineTotal",
            b"A",
            b"\xD0\x96",
            b"VeryLongElementNameIndeed",
        ];
        for n in &names {
            ids.intern(n);
        }
        ids.build();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ids.get(n), i as u32);
        }
        for n in [
            &b"InvoiceN0"[..],
            b"Lin",
            b"",
            b"B",
            b"LineTota1",
            b"VeryLongElementNameIndeeD",
        ] {
            assert_eq!(ids.get(n), NO_ID, "{n:?}");
        }
    }
}
