//! The allocator of every policy component built with the SDK: free lists per
//! size class in front of dlmalloc.
//!
//! Why not dlmalloc alone: a call's allocations are many and small. The host
//! lowers each string and list of the input through `cabi_realloc` (fifteen of
//! them for a strategy with three metric windows), the policy builds a reason
//! and its state, and the post-return call frees it all again. dlmalloc
//! splits, coalesces and bins every one of those, which took about a tenth
//! of a reused-instance strategy call. Here a block of up to 2 KiB comes off
//! a per-size free list (or is bumped off the current chunk) and goes back on
//! the list: a few instructions each way.
//!
//! Why dlmalloc behind it, not std's allocator: a policy usually runs in a
//! fresh instance per call, and std's wasm allocator takes every byte of heap
//! through `memory.grow`, which the host must back with page-protection
//! changes on the way in and undo on the way out. dlmalloc's own backend
//! first uses the memory the module starts with (`scalewise policy build`
//! links guests with room for a heap there), so a typical call never grows
//! memory at all. All sizes are bumped off one chunk, so the blocks a fresh
//! instance uses sit together on as few pages as they can: every page a call
//! dirties is a page the host must reset before the slot's next instance.
//!
//! The trade: small blocks are never handed back to dlmalloc. A policy's
//! memory stays at its peak use per size class, which the store's memory cap
//! bounds like any other use.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// The smallest block: room for the free list's link, at the largest
/// alignment a small block promises.
const MIN: usize = 16;
/// Classes of 16, 32, ... 2048 bytes.
const CLASSES: usize = 8;
const LARGEST: usize = MIN << (CLASSES - 1);
/// What is taken from the backing allocator at a time for small blocks.
const CHUNK: usize = 16 * 1024;

struct Lists {
    /// Freed blocks per class, linked through their first word.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk: `[next, end)`.
    next: *mut u8,
    end: *mut u8,
}

/// Size-class free lists over a backing allocator.
///
/// Not thread-safe: it is the global allocator only in wasm guests, which
/// run on one thread.
pub struct SizeClasses<A> {
    backing: A,
    lists: UnsafeCell<Lists>,
}

// SAFETY: a wasm32 component instance without the atomics feature is
// single-threaded; nothing else can reach the lists concurrently. Native
// and threaded builds never install this allocator.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for SizeClasses<A> {}

impl<A> SizeClasses<A> {
    pub const fn new(backing: A) -> Self {
        let lists = Lists { free: [ptr::null_mut(); CLASSES], next: ptr::null_mut(), end: ptr::null_mut() };
        Self { backing, lists: UnsafeCell::new(lists) }
    }
}

/// The class a layout's blocks come from; `None` for large or over-aligned
/// layouts, which go to the backing allocator.
fn class(size: usize, align: usize) -> Option<usize> {
    if align > MIN || size > LARGEST {
        return None;
    }
    let size = size.max(MIN).next_power_of_two();
    Some((size.trailing_zeros() - MIN.trailing_zeros()) as usize)
}

impl<A: GlobalAlloc> SizeClasses<A> {
    /// A block of class `c`: a freed one, else the next in the chunk, else
    /// the first of a new chunk.
    unsafe fn take(&self, c: usize) -> *mut u8 {
        let size = MIN << c;
        // SAFETY: single-threaded (see the `Sync` impl), and no reference to
        // the lists outlives this function.
        let lists = unsafe { &mut *self.lists.get() };
        let head = lists.free[c];
        if !head.is_null() {
            // SAFETY: every block on a free list holds the next link.
            lists.free[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        if (lists.end as usize) - (lists.next as usize) < size {
            // The rest of the old chunk (less than one block) is left unused.
            // SAFETY: CHUNK is a non-zero size and MIN a power of two.
            let chunk = unsafe { self.backing.alloc(Layout::from_size_align_unchecked(CHUNK, MIN)) };
            if chunk.is_null() {
                return chunk;
            }
            lists.next = chunk;
            // SAFETY: within the chunk just allocated.
            lists.end = unsafe { chunk.add(CHUNK) };
        }
        let block = lists.next;
        // SAFETY: checked above that `size` bytes remain; every size is a
        // multiple of MIN, so the next block stays aligned.
        lists.next = unsafe { block.add(size) };
        block
    }

    unsafe fn give(&self, c: usize, block: *mut u8) {
        // SAFETY: as in `take`; the block is at least MIN bytes and aligned
        // to it, so it can hold the link.
        unsafe {
            let lists = &mut *self.lists.get();
            block.cast::<*mut u8>().write(lists.free[c]);
            lists.free[c] = block;
        }
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for SizeClasses<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(c) => unsafe { self.take(c) },
            None => unsafe { self.backing.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout.size(), layout.align()) {
            Some(c) => unsafe { self.give(c, ptr) },
            None => unsafe { self.backing.dealloc(ptr, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(c) => unsafe {
                // A reused block holds whatever it held before.
                let block = self.take(c);
                if !block.is_null() {
                    block.write_bytes(0, layout.size());
                }
                block
            },
            None => unsafe { self.backing.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old, new) = (class(layout.size(), layout.align()), class(new_size, layout.align()));
        match (old, new) {
            (Some(a), Some(b)) if a == b => ptr,
            (None, None) => unsafe { self.backing.realloc(ptr, layout, new_size) },
            _ => unsafe {
                // SAFETY: the caller guarantees `new_size` is valid for the alignment.
                let moved = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 1), Some(1));
        assert_eq!(class(480, 8), Some(5));
        assert_eq!(class(2048, 8), Some(7));
        assert_eq!(class(2049, 8), None);
        assert_eq!(class(64, 32), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused() {
        let a = SizeClasses::new(System);
        unsafe {
            let mut blocks: Vec<*mut u8> = (0..600).map(|i| a.alloc(layout(8 + i % 40, 8))).collect();
            for (i, &b) in blocks.iter().enumerate() {
                assert!(!b.is_null());
                assert_eq!(b as usize % MIN, 0);
                b.write_bytes(i as u8, 8 + i % 40);
            }
            for (i, &b) in blocks.iter().enumerate() {
                let bytes = std::slice::from_raw_parts(b, 8 + i % 40);
                assert!(bytes.iter().all(|&x| x == i as u8), "block {i} was overwritten");
            }
            let freed = blocks.pop().unwrap();
            a.dealloc(freed, layout(8 + 599 % 40, 8));
            assert_eq!(a.alloc(layout(48, 8)), freed, "a freed block of the class is reused first");
            let zeroed = a.alloc_zeroed(layout(48, 8));
            assert!(std::slice::from_raw_parts(zeroed, 48).iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn realloc_keeps_contents_across_classes_and_backing() {
        let a = SizeClasses::new(System);
        unsafe {
            let mut p = a.alloc(layout(10, 1));
            p.copy_from_nonoverlapping(b"0123456789".as_ptr(), 10);
            assert_eq!(a.realloc(p, layout(10, 1), 16), p, "same class stays put");
            // Up within a class, across classes, into and out of the backing allocator.
            for (from, to) in [(10, 16), (16, 100), (100, 5000), (5000, 20_000), (20_000, 40)] {
                p = a.realloc(p, layout(from, 1), to);
                assert_eq!(std::slice::from_raw_parts(p, 10), b"0123456789", "{from} -> {to}");
            }
            a.dealloc(p, layout(40, 1));
        }
    }
}
