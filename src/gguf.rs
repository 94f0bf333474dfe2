//! GGUF reader (versions 2 and 3), over a whole byte slice or incrementally from a stream.
//!
//! Byte layout (all little-endian):
//! ```text
//! magic "GGUF" | version u32 | n_tensors u64 | n_kv u64
//! n_kv × { key: string, type: u32, value }          string = u64 len + UTF-8 bytes
//!                                                  array  = elem type u32 + u64 count + elems
//! n_tensors × { name: string, n_dims u32, dims[n_dims] u64 (ne0 = innermost), type u32,
//!               offset u64 (relative to the data section, a multiple of the alignment) }
//! padding to `general.alignment` (default 32) | data section
//! ```
//! Every file is hostile: each read is bounds-checked, counts are capped before anything is
//! allocated (an array never reserves more elements than the remaining bytes could encode), and
//! tensor extents are checked against the data section. Streaming: [`GgufStream`] buffers until
//! the header parses, then yields each tensor as soon as its bytes have arrived, so a browser
//! never holds the whole file.

use crate::error::{Error, Result};
use crate::quant::GgmlType;
use std::collections::BTreeMap;

pub const MAGIC: &[u8; 4] = b"GGUF";
/// Caps that no real model reaches but that stop a hostile header early.
pub const MAX_TENSORS: u64 = 1 << 16;
pub const MAX_KV: u64 = 1 << 16;
pub const MAX_DIMS: u32 = 4;
pub const MAX_HEADER_BYTES: u64 = 256 << 20;
pub const MAX_ARRAY_DEPTH: usize = 4;
/// Elements of one metadata array (the largest real vocabularies are ~256k tokens).
pub const MAX_ARRAY_LEN: u64 = 1 << 22;

/// A metadata value. Integer widths are kept so files round-trip, accessors coerce.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            Value::Bool(v) => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => self.as_u64().map(|v| v != 0),
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where one tensor lives in the file.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (contiguous) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Everything before the data section.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Total file length when known (to reject sizes the file cannot hold).
    file_len: Option<u64>,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let start = self.pos as u64;
        let end = start.checked_add(n).ok_or_else(|| Error::limit(what(), n, u64::MAX))?;
        if let Some(len) = self.file_len {
            if end > len {
                return Err(Error::Truncated { what: what(), start, end, len });
            }
        }
        if end > self.buf.len() as u64 {
            return Err(Error::Truncated { what: what(), start, end, len: self.buf.len() as u64 });
        }
        let s = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    /// Bytes that may still follow, for capping counts before allocating.
    fn remaining_bound(&self) -> u64 {
        let known = self.file_len.unwrap_or(MAX_HEADER_BYTES);
        known.saturating_sub(self.pos as u64)
    }
    /// Checks that `need` more bytes can exist before anything is allocated for them: beyond the
    /// header cap it is a limit, beyond a known file end the file is truncated.
    fn check_room(&self, need: u64, what: &dyn Fn() -> String) -> Result<()> {
        if need > MAX_HEADER_BYTES {
            return Err(Error::limit(what(), need, MAX_HEADER_BYTES));
        }
        if need > self.remaining_bound() {
            let start = self.pos as u64;
            let len = self.file_len.unwrap_or(MAX_HEADER_BYTES);
            return Err(Error::Truncated { what: what(), start, end: start + need, len });
        }
        Ok(())
    }
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.u64(what)?;
        self.check_room(n, &|| format!("{} (string length)", what()))?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::malformed(what(), "string is not valid UTF-8"))
    }
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value> {
        let w = || format!("metadata '{key}'");
        Ok(match ty {
            0 => Value::U8(self.arr::<1>(&w)?[0]),
            1 => Value::I8(self.arr::<1>(&w)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr(&w)?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(&w)?)),
            4 => Value::U32(self.u32(&w)?),
            5 => Value::I32(i32::from_le_bytes(self.arr(&w)?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(&w)?)),
            7 => match self.arr::<1>(&w)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Error::malformed(w(), format!("bool byte {b}"))),
            },
            8 => Value::String(self.string(&w)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(Error::limit(
                        format!("{} array nesting", w()),
                        depth as u64 + 1,
                        MAX_ARRAY_DEPTH as u64,
                    ));
                }
                let ety = self.u32(&w)?;
                let n = self.u64(&w)?;
                // every element takes at least one byte (strings and arrays at least 8)
                let min = match ety {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    _ => 8,
                };
                if n > MAX_ARRAY_LEN {
                    return Err(Error::limit(format!("{} array length", w()), n, MAX_ARRAY_LEN));
                }
                self.check_room(n.saturating_mul(min), &|| format!("{} array length {n}", w()))?;
                // reserve only for elements whose bytes are here: a stream's header is parsed
                // before its length is known, and a claimed count must not allocate by itself
                let here = (self.buf.len().saturating_sub(self.pos) as u64) / min;
                let mut v = Vec::with_capacity(n.min(here) as usize);
                for _ in 0..n {
                    v.push(self.value(ety, key, depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::U64(self.u64(&w)?),
            11 => Value::I64(i64::from_le_bytes(self.arr(&w)?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(&w)?)),
            t => return Err(Error::malformed(w(), format!("unknown value type {t}"))),
        })
    }
}

impl GgufHeader {
    /// Parses the header from the start of `buf`. `file_len` is the whole file's length when known
    /// (it may exceed `buf.len()` while streaming); a `Truncated` error whose `end` lies beyond
    /// `buf.len()` means "need more bytes".
    pub fn parse(buf: &[u8], file_len: Option<u64>) -> Result<GgufHeader> {
        let mut c = Cursor { buf, pos: 0, file_len };
        let magic = c.arr::<4>(&|| "GGUF magic".into())?;
        if &magic != MAGIC {
            return Err(Error::BadMagic {
                format: "GGUF",
                why: format!("the file starts with {:02x?}, not \"GGUF\"", magic),
            });
        }
        let version = c.u32(&|| "GGUF version".into())?;
        if !(2..=3).contains(&version) {
            return Err(Error::UnsupportedVersion { format: "GGUF", version, supported: "2, 3" });
        }
        let n_tensors = c.u64(&|| "tensor count".into())?;
        if n_tensors > MAX_TENSORS {
            return Err(Error::limit("tensor count", n_tensors, MAX_TENSORS));
        }
        let n_kv = c.u64(&|| "metadata count".into())?;
        if n_kv > MAX_KV {
            return Err(Error::limit("metadata count", n_kv, MAX_KV));
        }
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("metadata key #{i}"))?;
            let ty = c.u32(&|| format!("metadata '{key}' type"))?;
            let v = c.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), v).is_some() {
                return Err(Error::malformed(format!("metadata '{key}'"), "duplicate key"));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 16 => a,
                _ => {
                    return Err(Error::malformed(
                        "general.alignment",
                        format!("{v:?} is not a power of two ≤ 65536"),
                    ))
                }
            },
        };
        let mut tensors = Vec::with_capacity(n_tensors.min(c.remaining_bound() / 24) as usize);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("tensor #{i} name"))?;
            let w = || format!("tensor '{name}'");
            let n_dims = c.u32(&w)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::malformed(w(), format!("{n_dims} dimensions (1..=4 supported)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&w)?);
            }
            let ty_id = c.u32(&w)?;
            let offset = c.u64(&w)?;
            let ty = GgmlType::from_id(ty_id).ok_or_else(|| Error::UnsupportedType {
                name: name.clone(),
                ty: GgmlType::name_of_id(ty_id),
            })?;
            let n_el = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| Error::limit(format!("{} element count", w()), u64::MAX, u64::MAX))?;
            if n_el == 0 {
                return Err(Error::malformed(w(), "a dimension is zero"));
            }
            let row = ty.row_bytes(dims[0]).map_err(|e| Error::malformed(w(), e.to_string()))?;
            let n_bytes = row
                .checked_mul(n_el / dims[0])
                .ok_or_else(|| Error::limit(format!("{} byte size", w()), u64::MAX, u64::MAX))?;
            if offset % alignment != 0 {
                return Err(Error::malformed(
                    w(),
                    format!("offset {offset} is not a multiple of the alignment {alignment}"),
                ));
            }
            tensors.push(TensorInfo { name, dims, ty, offset, n_bytes });
        }
        let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
        let header = GgufHeader { version, metadata, tensors, alignment, data_offset };
        header.check_extents(file_len)?;
        Ok(header)
    }

    /// Every tensor lies inside the data section, and no two overlap.
    fn check_extents(&self, file_len: Option<u64>) -> Result<()> {
        let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(self.tensors.len());
        let mut names = std::collections::HashSet::new();
        for t in &self.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(Error::malformed(format!("tensor '{}'", t.name), "duplicate tensor name"));
            }
            let end = t.offset.checked_add(t.n_bytes).and_then(|e| e.checked_add(self.data_offset));
            let end = end
                .ok_or_else(|| Error::limit(format!("tensor '{}' end offset", t.name), u64::MAX, u64::MAX))?;
            if let Some(len) = file_len {
                if end > len {
                    return Err(Error::Truncated {
                        what: format!("tensor '{}' data", t.name),
                        start: self.data_offset + t.offset,
                        end,
                        len,
                    });
                }
            }
            spans.push((t.offset, t.offset + t.n_bytes, &t.name));
        }
        spans.sort();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(Error::malformed(
                    format!("tensor '{}'", w[1].2),
                    format!("data overlaps tensor '{}'", w[0].2),
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// A whole GGUF file in memory.
pub struct GgufFile<'a> {
    pub header: GgufHeader,
    pub bytes: &'a [u8],
}

impl<'a> GgufFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = GgufHeader::parse(bytes, Some(bytes.len() as u64))?;
        Ok(GgufFile { header, bytes })
    }

    /// The raw bytes of tensor `t` (bounds were checked at parse time).
    pub fn tensor_data(&self, t: &TensorInfo) -> &'a [u8] {
        let start = (self.header.data_offset + t.offset) as usize;
        &self.bytes[start..start + t.n_bytes as usize]
    }
}

/// What [`GgufStream::push`] produces as bytes arrive.
pub enum StreamEvent {
    Header(Box<GgufHeader>),
    /// Index into `header.tensors` and the tensor's bytes, once all have arrived (none for a
    /// tensor passed piecewise: its bytes went out as [`StreamEvent::Piece`]s before).
    Tensor(usize, Vec<u8>),
    /// Bytes of a tensor passed piecewise ([`GgufStream::piecewise`]) as they arrive: index into
    /// `header.tensors`, the bytes' offset in the tensor's data, the bytes. Pieces come in order.
    Piece(usize, u64, Vec<u8>),
}

/// Incremental GGUF parser: feed chunks, receive the header once, then each tensor.
///
/// Only the header is buffered; after it, bytes go straight into the buffer of the tensor they
/// belong to (allocated once at its exact size), so peak memory is the tensors plus one chunk.
/// Tensors a [`GgufStream::piecewise`] choice selects are not buffered at all: their bytes go out
/// as they arrive, for the consumer to place (the browser's GPU load writes them to the GPU).
pub struct GgufStream {
    file_len: Option<u64>,
    /// Header bytes until the header parses.
    buf: Vec<u8>,
    /// Bytes received so far (the absolute offset of the next chunk).
    received: u64,
    /// Only retry the header parse once this many bytes are buffered.
    need: u64,
    /// Tensor table and data offset (the metadata goes out with the header event).
    header: Option<GgufHeader>,
    /// Tensor indices sorted by offset, and the next one to emit.
    order: Vec<usize>,
    next: usize,
    /// Bytes of tensor `order[next]` received so far (unless it is passed piecewise).
    cur: Vec<u8>,
    /// Which tensors are passed piecewise.
    piecewise: Option<fn(&TensorInfo) -> bool>,
}

impl GgufStream {
    pub fn new(file_len: Option<u64>) -> Self {
        GgufStream {
            file_len,
            buf: Vec::new(),
            received: 0,
            need: 0,
            header: None,
            order: Vec::new(),
            next: 0,
            cur: Vec::new(),
            piecewise: None,
        }
    }

    /// Passes each tensor `choose` selects piecewise: its bytes go out in [`StreamEvent::Piece`]s
    /// as they arrive, never held whole, and its [`StreamEvent::Tensor`] carries no bytes.
    pub fn piecewise(mut self, choose: fn(&TensorInfo) -> bool) -> Self {
        self.piecewise = Some(choose);
        self
    }

    /// The tensor table once the header has arrived (metadata is in the header event only).
    pub fn header(&self) -> Option<&GgufHeader> {
        self.header.as_ref()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<StreamEvent>> {
        let mut events = Vec::new();
        let at = self.received;
        if let Some(len) = self.file_len {
            let have = at + chunk.len() as u64;
            if have > len {
                return Err(Error::malformed(
                    "GGUF stream",
                    format!("received {have} bytes but the file length is {len}"),
                ));
            }
        }
        self.received += chunk.len() as u64;
        if self.header.is_some() {
            self.feed(at, chunk, &mut events);
            return Ok(events);
        }
        self.buf.extend_from_slice(chunk);
        if (self.buf.len() as u64) < self.need {
            return Ok(events);
        }
        match GgufHeader::parse(&self.buf, self.file_len) {
            Ok(h) => {
                let mut order: Vec<usize> = (0..h.tensors.len()).collect();
                order.sort_by_key(|&i| h.tensors[i].offset);
                self.order = order;
                self.header = Some(GgufHeader {
                    version: h.version,
                    metadata: BTreeMap::new(),
                    tensors: h.tensors.clone(),
                    alignment: h.alignment,
                    data_offset: h.data_offset,
                });
                events.push(StreamEvent::Header(Box::new(h)));
                let buf = std::mem::take(&mut self.buf);
                self.feed(0, &buf, &mut events);
            }
            Err(Error::Truncated { end, .. })
                if end > self.buf.len() as u64 && self.file_len.is_none_or(|l| end <= l) =>
            {
                if end > MAX_HEADER_BYTES && self.buf.len() as u64 >= MAX_HEADER_BYTES {
                    return Err(Error::limit("GGUF header size", end, MAX_HEADER_BYTES));
                }
                self.need = end;
            }
            Err(e) => return Err(e),
        }
        Ok(events)
    }

    /// Routes `data`, which starts at file offset `pos`, into the tensors it covers.
    fn feed(&mut self, mut pos: u64, mut data: &[u8], events: &mut Vec<StreamEvent>) {
        let Some(h) = &self.header else { return };
        while let Some(&idx) = self.order.get(self.next) {
            let t = &h.tensors[idx];
            let start = h.data_offset + t.offset;
            if pos < start {
                // padding or the header's tail: skip to the tensor
                if data.is_empty() {
                    return;
                }
                let skip = (start - pos).min(data.len() as u64) as usize;
                pos += skip as u64;
                data = &data[skip..];
                continue;
            }
            // tensors do not overlap (checked with the header), so `pos` is within this one
            let got = pos - start;
            let take = (t.n_bytes - got).min(data.len() as u64) as usize;
            if self.piecewise.is_some_and(|choose| choose(t)) {
                if take > 0 {
                    events.push(StreamEvent::Piece(idx, got, data[..take].to_vec()));
                }
            } else {
                if self.cur.capacity() == 0 && t.n_bytes > 0 {
                    self.cur = Vec::with_capacity(t.n_bytes as usize);
                }
                self.cur.extend_from_slice(&data[..take]);
            }
            pos += take as u64;
            data = &data[take..];
            if pos < start + t.n_bytes {
                return;
            }
            events.push(StreamEvent::Tensor(idx, std::mem::take(&mut self.cur)));
            self.next += 1;
        }
    }

    /// Call at end of stream: errors if the header or any tensor never arrived.
    pub fn finish(&self) -> Result<()> {
        let have = self.received;
        match &self.header {
            None => match GgufHeader::parse(&self.buf, Some(have)) {
                Err(e) => Err(e),
                Ok(_) => Err(Error::malformed("GGUF stream", "header parsed only at end")),
            },
            Some(h) => match self.order.get(self.next) {
                None => Ok(()),
                Some(&i) => {
                    let t = &h.tensors[i];
                    Err(Error::Truncated {
                        what: format!("tensor '{}' data", t.name),
                        start: h.data_offset + t.offset,
                        end: h.data_offset + t.offset + t.n_bytes,
                        len: have,
                    })
                }
            },
        }
    }
}

/// Writes GGUF v3 (tests' hostile and tiny models, and `wisp synth`'s random-weight models).
pub mod write {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(*x as u8),
            Value::String(s) => string(out, s),
            Value::Array(a) => {
                let ety = a.first().map(type_id).unwrap_or(4);
                out.extend_from_slice(&ety.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for e in a {
                    value(out, e);
                }
            }
        }
    }

    pub fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// Everything before the tensor data, padded to the 32-byte alignment: `tensors` are (name,
    /// dims in ggml order, type, bytes of data), each tensor's data then padded to 32 bytes.
    pub fn header(metadata: &[(&str, Value)], tensors: &[(&str, Vec<u64>, GgmlType, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            string(&mut out, k);
            out.extend_from_slice(&type_id(v).to_le_bytes());
            value(&mut out, v);
        }
        let mut offset = 0u64;
        for (name, dims, ty, n_bytes) in tensors {
            string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&(*ty as u32).to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += padded(*n_bytes);
        }
        out.resize(padded(out.len() as u64) as usize, 0);
        out
    }

    /// `n` rounded up to the 32-byte alignment.
    pub fn padded(n: u64) -> u64 {
        n.div_ceil(32) * 32
    }

    /// A whole file in memory. `tensors`: (name, dims in ggml order, type, raw bytes).
    pub fn gguf(metadata: &[(&str, Value)], tensors: &[(&str, Vec<u64>, GgmlType, Vec<u8>)]) -> Vec<u8> {
        let infos: Vec<_> =
            tensors.iter().map(|(n, d, t, data)| (*n, d.clone(), *t, data.len() as u64)).collect();
        let mut out = header(metadata, &infos);
        for (_, _, _, data) in tensors {
            out.extend_from_slice(data);
            out.resize(padded(out.len() as u64) as usize, 0);
        }
        out
    }
}
