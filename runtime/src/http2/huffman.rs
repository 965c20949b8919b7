//! The static Huffman code of HPACK (RFC 7541 §5.2, Appendix B).
//!
//! The code is canonical: codes of each length follow one another in symbol order, so the
//! table here is only the 257 code lengths (the 256 octets and EOS); the codes are derived
//! from them at compile time. Decoding runs a nibble automaton (256 states, one per
//! internal node of the code tree, 16 transitions each) built once per process: two table
//! steps per input byte, no allocation.

use std::sync::OnceLock;

/// Code length in bits of each symbol (octets 0–255, then EOS).
const LENS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: usize = 256;

/// The codes, right-aligned, by canonical assignment: by length, then by symbol.
const CODES: [u32; 257] = canonical_codes();

const fn canonical_codes() -> [u32; 257] {
    let mut codes = [0u32; 257];
    let mut code: u32 = 0;
    let mut len: u8 = 1;
    while len <= 30 {
        let mut sym = 0;
        while sym < 257 {
            if LENS[sym] == len {
                codes[sym] = code;
                code += 1;
            }
            sym += 1;
        }
        code <<= 1;
        len += 1;
    }
    codes
}

/// The length in bytes of `data` Huffman-coded.
pub(crate) fn encoded_len(data: &[u8]) -> usize {
    let bits: usize = data
        .iter()
        .map(|&b| usize::from(LENS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// Appends `data` Huffman-coded, padded with the most significant bits of EOS (ones).
pub(crate) fn encode(data: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in data {
        let len = u32::from(LENS[usize::from(b)]);
        acc = (acc << len) | u64::from(CODES[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

/// One step of the automaton: from a state, for one nibble.
#[derive(Clone, Copy, Default)]
struct Step {
    /// The state after the nibble.
    next: u8,
    /// A symbol completed within the nibble (at most one: no code is shorter than 5 bits).
    sym: Option<u8>,
    /// The nibble completes EOS, or leads nowhere: a decoding error.
    fail: bool,
}

struct Automaton {
    steps: Vec<[Step; 16]>,
    /// Whether the input may end in this state: the bits since the last symbol are all ones
    /// (a prefix of EOS). RFC 7541 §5.2 makes more than seven an error; nginx's decoder
    /// takes any prefix of EOS (its test client pads a whole byte when the code fills the
    /// last one), and so does this one.
    accepts: Vec<bool>,
}

fn automaton() -> &'static Automaton {
    static A: OnceLock<Automaton> = OnceLock::new();
    A.get_or_init(build)
}

/// Builds the code tree (internal nodes numbered from the root, 0) and runs every nibble
/// from every internal node through it.
fn build() -> Automaton {
    // Tree: children of internal nodes; a child is a node (internal) or a symbol (leaf).
    #[derive(Clone, Copy)]
    enum Child {
        None,
        Node(usize),
        Leaf(usize),
    }
    let mut kids: Vec<[Child; 2]> = vec![[Child::None; 2]];
    let mut ones: Vec<bool> = vec![true];
    for sym in 0..257 {
        let len = LENS[sym];
        let code = CODES[sym];
        let mut node = 0;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                kids[node][bit] = Child::Leaf(sym);
            } else {
                node = match kids[node][bit] {
                    Child::Node(n) => n,
                    _ => {
                        let n = kids.len();
                        kids.push([Child::None; 2]);
                        ones.push(ones[node] && bit == 1);
                        kids[node][bit] = Child::Node(n);
                        n
                    }
                };
            }
        }
    }
    let mut steps = vec![[Step::default(); 16]; kids.len()];
    for (state, row) in steps.iter_mut().enumerate() {
        for (nibble, step) in row.iter_mut().enumerate() {
            let mut node = state;
            for i in (0..4).rev() {
                let bit = (nibble >> i) & 1;
                match kids[node][bit] {
                    Child::Node(n) => node = n,
                    Child::Leaf(EOS) | Child::None => {
                        step.fail = true;
                        break;
                    }
                    Child::Leaf(sym) => {
                        step.sym = Some(sym as u8);
                        node = 0;
                    }
                }
            }
            step.next = node as u8;
        }
    }
    let accepts = ones;
    Automaton { steps, accepts }
}

/// Appends the Huffman-coded string `data` decoded; `Err` for what RFC 7541 §5.2 makes a
/// decoding error (EOS in the string, padding not all ones; longer padding is taken, as
/// nginx takes it).
pub(crate) fn decode(data: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    let a = automaton();
    let mut state = 0usize;
    for &b in data {
        for nibble in [b >> 4, b & 0x0f] {
            let step = a.steps[state][usize::from(nibble)];
            if step.fail {
                return Err(());
            }
            if let Some(sym) = step.sym {
                out.push(sym);
            }
            state = usize::from(step.next);
        }
    }
    if a.accepts[state] {
        Ok(())
    } else {
        Err(())
    }
}

/// Builds the decoder's tables now (each worker does before serving, so that no request
/// pays for it).
pub(crate) fn prepare() {
    automaton();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_as_rfc_7541_appendix_b() {
        // A few rows of the appendix: ' ', '0', 'a', 0x00, 0xff, EOS.
        assert_eq!((CODES[32], LENS[32]), (0x14, 6));
        assert_eq!((CODES[48], LENS[48]), (0x0, 5));
        assert_eq!((CODES[97], LENS[97]), (0x3, 5));
        assert_eq!((CODES[0], LENS[0]), (0x1ff8, 13));
        assert_eq!((CODES[255], LENS[255]), (0x3ffffee, 26));
        assert_eq!((CODES[EOS], LENS[EOS]), (0x3fffffff, 30));
        // A prefix code: 256 internal nodes for 257 leaves.
        assert_eq!(automaton().steps.len(), 256);
    }

    #[test]
    fn rfc_7541_examples() {
        // C.4.1 and C.6.1.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&www, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        let mut enc = Vec::new();
        encode(b"www.example.com", &mut enc);
        assert_eq!(enc, www);
        assert_eq!(encoded_len(b"www.example.com"), www.len());
        out.clear();
        decode(&[0x64, 0x02], &mut out).unwrap();
        assert_eq!(out, b"302");
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in [0, 1, 2, 3, 7, 100, all.len()] {
            let mut enc = Vec::new();
            encode(&all[..len], &mut enc);
            assert_eq!(enc.len(), encoded_len(&all[..len]));
            let mut dec = Vec::new();
            decode(&enc, &mut dec).unwrap();
            assert_eq!(dec, &all[..len]);
        }
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        let mut out = Vec::new();
        // '0' (00000) with padding 111: fine; with padding 000: not ones.
        assert!(decode(&[0x07], &mut out).is_ok());
        assert!(decode(&[0x00], &mut out).is_err());
        // Padding longer than 7 bits is taken (as nginx), up to a whole EOS, which is not.
        assert!(decode(&[0x07, 0xff], &mut out).is_ok());
        out.clear();
        assert!(decode(&[0x07, 0xff, 0xff, 0xff], &mut out).is_ok());
        assert_eq!(out, b"0");
        assert!(decode(&[0xff, 0xff, 0xff, 0xff], &mut out).is_err());
        assert!(decode(&[0x07, 0xfe], &mut out).is_err());
    }

    /// A bit-by-bit decoder straight from RFC 7541 §5.2, to check the automaton against.
    fn reference(data: &[u8]) -> Result<Vec<u8>, ()> {
        static CODE_TO_SYM: OnceLock<std::collections::HashMap<(u8, u32), usize>> = OnceLock::new();
        let table =
            CODE_TO_SYM.get_or_init(|| (0..257).map(|s| ((LENS[s], CODES[s]), s)).collect());
        let mut out = Vec::new();
        let (mut code, mut len) = (0u32, 0u8);
        for &b in data {
            for i in (0..8).rev() {
                code = (code << 1) | u32::from((b >> i) & 1);
                len += 1;
                if let Some(&sym) = table.get(&(len, code)) {
                    if sym == EOS {
                        return Err(());
                    }
                    out.push(sym as u8);
                    code = 0;
                    len = 0;
                } else if len > 30 {
                    return Err(());
                }
            }
        }
        // Any prefix of EOS ends a string, as in nginx (RFC 7541 would stop at 7 bits).
        if code != (1u32 << len) - 1 {
            return Err(());
        }
        Ok(out)
    }

    #[test]
    fn automaton_matches_the_reference_decoder() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let d = [a, b];
                let mut out = Vec::new();
                let r = decode(&d, &mut out).map(|()| out);
                assert_eq!(r, reference(&d), "{d:02x?}");
            }
        }
        let mut seed = 0x1234_5678_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 7) as usize + 1;
            let high = if seed & 0x100 != 0 { 0xe0 } else { 0 };
            let d: Vec<u8> = (0..len).map(|i| ((seed >> (8 * i)) as u8) | high).collect();
            let mut out = Vec::new();
            let r = decode(&d, &mut out).map(|()| out);
            assert_eq!(r, reference(&d), "{d:02x?}");
        }
    }
}
