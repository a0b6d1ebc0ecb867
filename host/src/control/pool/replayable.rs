//! Keeping each policy decision replayable: its metric windows, the
//! target's headroom, and any change the loop made to the pool's memory
//! since the last journal frame, in the record itself
//! ([`RecordedInputs`]).
//!
//! Why the loop keeps what it last journalled: the journal stores the
//! pool's memory after every frame, so a replay starts each decision from
//! the frame before it. Between that frame and the decision, the loop may
//! change the memory itself (it clears an action it finds settled, or on
//! standby remembers a leader's change as an action). Comparing with what
//! was last written finds every such change, whatever its cause, and the
//! record carries the memory as the decision began only then, which is
//! rarely.

use scalewise_sdk::MetricWindow;

use crate::decide::feasibility::Headroom;
use crate::decide::inputs::{InputRecorder, RecordedInputs};
use crate::decide::memory::PoolMemory;

#[derive(Debug, Default)]
pub(super) struct Replayable {
    windows: InputRecorder,
    /// The memory (without states) of the pool's last journal frame.
    journaled: Option<PoolMemory>,
}

impl Replayable {
    /// Starting from `memory`, as read from the journal.
    pub(super) fn new(memory: &PoolMemory) -> Self {
        Replayable { windows: InputRecorder::default(), journaled: Some(memory.sans_states()) }
    }

    /// The inputs of the decision about to be taken as number `seq` from
    /// `memory`.
    pub(super) fn inputs(&mut self, memory: &PoolMemory, seq: u64, metrics: &[MetricWindow], headroom: Option<Headroom>) -> RecordedInputs {
        let now = memory.sans_states();
        let began_with = (self.journaled.as_ref() != Some(&now)).then_some(now);
        self.windows.record(seq, metrics, headroom, began_with)
    }

    /// A frame with `memory` was written (`ok`), or its write failed.
    pub(super) fn journaled(&mut self, memory: &PoolMemory, ok: bool) {
        if ok {
            self.journaled = Some(memory.sans_states());
        } else {
            // The journal lacks this frame: the next record's windows are
            // whole, and it carries the memory it began with.
            self.windows.forget();
            self.journaled = None;
        }
    }
}
