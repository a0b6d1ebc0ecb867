//! The log's unit: a segment is everything one commit wrote, as a run of
//! frames, one per record or memory update. Each frame names its pool, the
//! decision's seq, the pool's previous decision frame, and carries the
//! record JSON (empty for a memory-only frame), the pool's memory JSON, and
//! a states section: a baseline of every state the pool has. Between
//! baselines, a policy's state that changed has a frame of its own, named
//! by the pool and the policy, with only that section.
//!
//! Frame: `len u32 | pool_len u16 | pool | seq u64 | prev u64 | rec_len u32 | rec | mem_len u32 | mem | states`,
//! little-endian; `len` counts everything after itself. Its top bit marks
//! this layout; a frame without it (written before states had a section of
//! their own) ends with `mem`, which then holds the states too.

/// Where a frame lives: segment key in the high bits, frame index in the low 20.
pub type Ptr = u64;
const INDEX_BITS: u32 = 20;

pub fn ptr(segment: u64, index: usize) -> Ptr {
    (segment << INDEX_BITS) | index as u64
}

pub fn split(p: Ptr) -> (u64, usize) {
    (p >> INDEX_BITS, (p & ((1 << INDEX_BITS) - 1)) as usize)
}

pub struct Frame<'a> {
    pub pool: &'a str,
    pub seq: u64,
    /// The pool's previous decision frame (0: none).
    pub prev: Ptr,
    /// Empty for a memory-only frame.
    pub record: &'a [u8],
    pub memory: &'a [u8],
    /// Empty when the states did not change.
    pub states: &'a [u8],
}

/// Set in `len` when the frame has a states section.
const WITH_STATES: u32 = 1 << 31;

pub fn push(out: &mut Vec<u8>, f: &Frame<'_>) {
    let len = 2 + f.pool.len() + 8 + 8 + 4 + f.record.len() + 4 + f.memory.len() + f.states.len();
    assert!(len < WITH_STATES as usize, "a journal frame over 2 GiB");
    out.extend_from_slice(&(len as u32 | WITH_STATES).to_le_bytes());
    out.extend_from_slice(&(f.pool.len() as u16).to_le_bytes());
    out.extend_from_slice(f.pool.as_bytes());
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.prev.to_le_bytes());
    out.extend_from_slice(&(f.record.len() as u32).to_le_bytes());
    out.extend_from_slice(f.record);
    out.extend_from_slice(&(f.memory.len() as u32).to_le_bytes());
    out.extend_from_slice(f.memory);
    out.extend_from_slice(f.states);
}

/// The frames of a segment, in order. Stops at the first malformed frame.
pub fn frames(segment: &[u8]) -> impl Iterator<Item = Frame<'_>> {
    let mut rest = segment;
    std::iter::from_fn(move || {
        let word = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let len = (word & !WITH_STATES) as usize;
        let body = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        let pool_len = u16::from_le_bytes(body.get(..2)?.try_into().ok()?) as usize;
        let pool = std::str::from_utf8(body.get(2..2 + pool_len)?).ok()?;
        let b = &body[2 + pool_len..];
        let seq = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
        let prev = u64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
        let rec_len = u32::from_le_bytes(b.get(16..20)?.try_into().ok()?) as usize;
        let record = b.get(20..20 + rec_len)?;
        let after = b.get(20 + rec_len..)?;
        let (memory, states) = if word & WITH_STATES == 0 {
            (after, &[][..])
        } else {
            let mem_len = u32::from_le_bytes(after.get(..4)?.try_into().ok()?) as usize;
            (after.get(4..4 + mem_len)?, after.get(4 + mem_len..)?)
        };
        Some(Frame { pool, seq, prev, record, memory, states })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut seg = Vec::new();
        push(&mut seg, &Frame { pool: "a", seq: 7, prev: ptr(3, 2), record: b"{\"r\":1}", memory: b"{}", states: b"{\"p\":\"s\"}" });
        push(&mut seg, &Frame { pool: "pool-b", seq: 1, prev: 0, record: b"", memory: b"{\"m\":2}", states: b"" });
        let f: Vec<_> = frames(&seg).collect();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].pool, f[0].seq, split(f[0].prev), f[0].record, f[0].memory), ("a", 7, (3, 2), &b"{\"r\":1}"[..], &b"{}"[..]));
        assert_eq!(f[0].states, b"{\"p\":\"s\"}");
        assert_eq!((f[1].pool, f[1].record.len(), f[1].memory, f[1].states), ("pool-b", 0, &b"{\"m\":2}"[..], &b""[..]));
        assert_eq!(frames(&seg[..seg.len() - 1]).count(), 1, "a torn frame is not read");
    }

    #[test]
    fn frames_written_before_states_had_a_section_still_read() {
        // The old layout: `len | pool_len | pool | seq | prev | rec_len | rec | mem`.
        let mut seg = Vec::new();
        let (rec, mem) = (&b"{}"[..], &b"{\"states\":{}}"[..]);
        let len = 2 + 1 + 8 + 8 + 4 + rec.len() + mem.len();
        seg.extend_from_slice(&(len as u32).to_le_bytes());
        seg.extend_from_slice(&1u16.to_le_bytes());
        seg.extend_from_slice(b"a");
        seg.extend_from_slice(&3u64.to_le_bytes());
        seg.extend_from_slice(&0u64.to_le_bytes());
        seg.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        seg.extend_from_slice(rec);
        seg.extend_from_slice(mem);
        let f: Vec<_> = frames(&seg).collect();
        assert_eq!((f[0].seq, f[0].memory, f[0].states), (3, mem, &b""[..]));
    }
}
