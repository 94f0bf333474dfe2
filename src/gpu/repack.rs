//! Weights in GPU layout: every row a whole number of `u32` words, every quantized block
//! 4-byte aligned, so WGSL reads them as `array<u32>` without byte addressing.
//!
//! | type | file block | GPU block (words) | change |
//! |---|---|---|---|
//! | Q4_0 | 18 B | 5 | 2 pad bytes after `d` |
//! | Q4_1 | 20 B | 5 | none |
//! | Q5_0 | 22 B | 6 | 2 pad bytes after `d` (`qh` is word 1) |
//! | Q5_1 | 24 B | 6 | none |
//! | Q8_0 | 34 B | 9 | 2 pad bytes after `d` |
//! | IQ4_NL | 18 B | 5 | 2 pad bytes after `d` |
//! | Q2_K | 84 B | 21 | none |
//! | Q3_K | 110 B | 28 | 2 pad bytes at the end (`d` in word 27's low half) |
//! | Q4_K | 144 B | 36 | none |
//! | Q5_K | 176 B | 44 | none |
//! | Q6_K | 210 B | 53 | 2 pad bytes at the end (`d` in word 52's low half) |
//! | F16/BF16 | 2 B/value | ⌈cols/2⌉ per row | odd rows padded with a zero |
//! | F32 | 4 B/value | cols per row | none |

use crate::quant::GgmlType;

/// `u32` words per block (quantized) or per row (float types) of `cols` values.
pub fn row_words(ty: GgmlType, cols: usize) -> usize {
    match ty {
        GgmlType::F32 => cols,
        GgmlType::F16 | GgmlType::BF16 => cols.div_ceil(2),
        _ => cols / ty.block_size() * block_words(ty),
    }
}

pub fn block_words(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::IQ4NL => 5,
        GgmlType::Q5_0 | GgmlType::Q5_1 => 6,
        GgmlType::Q8_0 => 9,
        GgmlType::Q2K => 21,
        GgmlType::Q3K => 28,
        GgmlType::Q4K => 36,
        GgmlType::Q5K => 44,
        GgmlType::Q6K => 53,
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
    }
}

/// Repacks `rows` rows of `cols` values (`data` in the file's encoding, whole rows) into words.
/// The caller has checked `data.len() == rows · row_bytes(cols)`.
pub fn repack(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Vec<u32> {
    let rw = row_words(ty, cols);
    let mut out = vec![0u32; rows * rw];
    let src_row = data.len() / rows.max(1);
    for (r, dst) in out.chunks_exact_mut(rw.max(1)).enumerate().take(rows) {
        let row = &data[r * src_row..(r + 1) * src_row];
        match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => put_bytes(dst, 0, row),
            _ => {
                let (ts, bw) = (ty.type_size(), block_words(ty));
                for (b, blk) in row.chunks_exact(ts).enumerate() {
                    let o = b * bw * 4;
                    match ty {
                        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4NL => {
                            put_bytes(dst, o, &blk[..2]);
                            put_bytes(dst, o + 4, &blk[2..]);
                        }
                        _ => put_bytes(dst, o, blk),
                    }
                }
            }
        }
    }
    out
}

/// Writes `bytes` little-endian into `words` starting at byte offset `at`.
fn put_bytes(words: &mut [u32], at: usize, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        let p = at + i;
        words[p / 4] |= (b as u32) << (8 * (p % 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_is_padded_after_its_scale() {
        let mut blk = vec![0x34u8, 0x12];
        blk.extend(0..32u8);
        let w = repack(GgmlType::Q8_0, 1, 32, &blk);
        assert_eq!(w.len(), 9);
        assert_eq!(w[0], 0x1234);
        assert_eq!(w[1], u32::from_le_bytes([0, 1, 2, 3]));
        assert_eq!(w[8], u32::from_le_bytes([28, 29, 30, 31]));
    }

    #[test]
    fn every_block_fits_its_words_with_at_most_one_pad() {
        for ty in GgmlType::ALL.into_iter().filter(|t| t.is_quantized()) {
            let (ts, bw) = (ty.type_size(), block_words(ty));
            assert!(4 * bw >= ts && 4 * bw - ts <= 2, "{}: {ts} B in {bw} words", ty.name());
        }
    }

    #[test]
    fn q5_0_block_is_padded_after_its_scale() {
        let mut blk = vec![0x34u8, 0x12, 0xA, 0xB, 0xC, 0xD];
        blk.extend(0..16u8);
        let w = repack(GgmlType::Q5_0, 1, 32, &blk);
        assert_eq!(w, [0x1234, 0x0D0C0B0A, 0x03020100, 0x07060504, 0x0B0A0908, 0x0F0E0D0C]);
    }

    #[test]
    fn odd_f16_rows_are_padded_per_row() {
        let data: Vec<u8> = (1..=12u8).collect(); // 2 rows of 3 f16
        let w = repack(GgmlType::F16, 2, 3, &data);
        assert_eq!(
            w,
            [
                u32::from_le_bytes([1, 2, 3, 4]),
                u32::from_le_bytes([5, 6, 0, 0]),
                u32::from_le_bytes([7, 8, 9, 10]),
                u32::from_le_bytes([11, 12, 0, 0])
            ]
        );
    }
}
