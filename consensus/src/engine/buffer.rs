//! A bounded buffer for messages of the next few heights, replayed when the
//! engine starts that height.
//!
//! Validators that decide first move on and start sending messages for the
//! next height before slower ones get there; dropping those would cost a
//! round. The buffer only takes messages whose signature verified and whose
//! signer is a validator of the current height, and holds at most a fixed
//! number in total and per signer, so nobody can make it grow without bound.

use std::collections::BTreeMap;

use crypto::PublicKey;

use crate::engine::stats::DropReason;
use crate::messages::ConsensusMessage;
use crate::types::Height;

#[derive(Debug, Default)]
pub(crate) struct FutureBuffer {
    by_height: BTreeMap<Height, Vec<ConsensusMessage>>,
    per_signer: BTreeMap<(Height, PublicKey), usize>,
    total: usize,
}

impl FutureBuffer {
    pub fn contains(&self, message: &ConsensusMessage) -> bool {
        self.by_height
            .get(&message.height())
            .is_some_and(|messages| messages.contains(message))
    }

    pub fn push(
        &mut self,
        message: ConsensusMessage,
        max_total: usize,
        max_per_signer: usize,
    ) -> Result<(), DropReason> {
        let key = (message.height(), message.signer());
        let from_signer = self.per_signer.get(&key).copied().unwrap_or(0);
        if self.total >= max_total || from_signer >= max_per_signer {
            return Err(DropReason::BufferFull);
        }
        self.per_signer.insert(key, from_signer + 1);
        self.total += 1;
        self.by_height
            .entry(message.height())
            .or_default()
            .push(message);
        Ok(())
    }

    /// Removes and returns the messages of `height`, discarding lower heights.
    pub fn take(&mut self, height: Height) -> Vec<ConsensusMessage> {
        let mut kept = self.by_height.split_off(&height);
        let taken = kept.remove(&height).unwrap_or_default();
        self.by_height = kept;
        self.per_signer = self
            .per_signer
            .split_off(&(height.next(), PublicKey([0; 32])));
        self.total = self.by_height.values().map(Vec::len).sum();
        taken
    }

    pub fn len(&self) -> usize {
        self.total
    }
}
