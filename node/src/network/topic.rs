//! The gossipsub topics and their size limits.
//!
//! Topic names carry the chain id, so nodes of two chains sharing a machine
//! or a peer list never mix their messages. Each topic has its own limit,
//! checked when publishing and again on receipt (a peer may run other code).

use libp2p::gossipsub::{IdentTopic, TopicHash};

/// Most bytes of one consensus message (a proposal or vote refers to the
/// block by hash, so it stays small).
pub const MAX_CONSENSUS_MESSAGE_BYTES: usize = 1024;
/// Most bytes of one transactions message (a batch of signed transactions).
pub const MAX_TRANSACTIONS_MESSAGE_BYTES: usize = 1024 * 1024;
/// Most bytes of one blocks message (a proposed block).
pub const MAX_BLOCKS_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What gossipsub adds around the payload (source peer id, public key,
/// signature, sequence number, topic name, protobuf framing): the per-topic
/// limit on the wire is the payload limit plus this.
pub(crate) const GOSSIP_ENVELOPE_BYTES: usize = 512;

/// A gossip topic of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Signed transactions, in batches.
    Transactions,
    /// Consensus messages: proposals and votes.
    Consensus,
    /// Proposed blocks.
    Blocks,
}

impl Topic {
    /// Every topic, in a fixed order.
    pub const ALL: [Topic; 3] = [Topic::Transactions, Topic::Consensus, Topic::Blocks];

    /// The largest payload accepted on this topic.
    pub fn max_bytes(self) -> usize {
        match self {
            Topic::Transactions => MAX_TRANSACTIONS_MESSAGE_BYTES,
            Topic::Consensus => MAX_CONSENSUS_MESSAGE_BYTES,
            Topic::Blocks => MAX_BLOCKS_MESSAGE_BYTES,
        }
    }

    /// The gossipsub topic name on the chain: `/scf/<chain id hex>/<kind>`.
    pub fn name(self, chain_id: &crypto::ChainId) -> String {
        let kind = match self {
            Topic::Transactions => "txs",
            Topic::Consensus => "consensus",
            Topic::Blocks => "blocks",
        };
        format!("/scf/{}/{kind}", chain_id.0.to_hex())
    }

    pub(crate) fn gossipsub_topic(self, chain_id: &crypto::ChainId) -> IdentTopic {
        IdentTopic::new(self.name(chain_id))
    }
}

/// The largest gossipsub frame: the largest topic's payload plus the envelope
/// and room for control messages sharing the frame.
pub(crate) fn max_gossip_frame_bytes() -> usize {
    let largest = Topic::ALL.iter().map(|topic| topic.max_bytes()).max();
    largest.unwrap_or(MAX_BLOCKS_MESSAGE_BYTES) + 64 * 1024
}

/// Maps received topic hashes back to [`Topic`] for one chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainTopics {
    hashes: Vec<(TopicHash, Topic)>,
}

impl ChainTopics {
    pub(crate) fn new(chain_id: &crypto::ChainId) -> ChainTopics {
        let hashes = Topic::ALL
            .iter()
            .map(|&topic| (topic.gossipsub_topic(chain_id).hash(), topic))
            .collect();
        ChainTopics { hashes }
    }

    pub(crate) fn topic(&self, hash: &TopicHash) -> Option<Topic> {
        self.hashes
            .iter()
            .find(|(known, _)| known == hash)
            .map(|&(_, topic)| topic)
    }

    pub(crate) fn hash(&self, topic: Topic) -> TopicHash {
        self.hashes
            .iter()
            .find(|&&(_, known)| known == topic)
            .map(|(hash, _)| hash.clone())
            .expect("every topic has a hash")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_carry_the_chain_id() {
        let chain_id = crypto::ChainId(crypto::Hash([0xab; 32]));
        let hex = "ab".repeat(32);
        assert_eq!(
            Topic::Transactions.name(&chain_id),
            format!("/scf/{hex}/txs")
        );
        assert_eq!(
            Topic::Consensus.name(&chain_id),
            format!("/scf/{hex}/consensus")
        );
        assert_eq!(Topic::Blocks.name(&chain_id), format!("/scf/{hex}/blocks"));
        let other = crypto::ChainId(crypto::Hash([0xcd; 32]));
        assert_ne!(Topic::Blocks.name(&chain_id), Topic::Blocks.name(&other));
    }

    #[test]
    fn topic_hashes_map_back_to_topics() {
        let chain_id = crypto::ChainId(crypto::Hash([1; 32]));
        let topics = ChainTopics::new(&chain_id);
        for topic in Topic::ALL {
            assert_eq!(topics.topic(&topics.hash(topic)), Some(topic));
        }
        let foreign = IdentTopic::new("/scf/other/txs").hash();
        assert_eq!(topics.topic(&foreign), None);
    }

    #[test]
    fn the_gossip_frame_fits_the_largest_topic() {
        assert!(max_gossip_frame_bytes() > MAX_BLOCKS_MESSAGE_BYTES + GOSSIP_ENVELOPE_BYTES);
    }
}
