//! The scfledger node: libp2p networking, mempool, consensus driver, block
//! sync and the HTTP API. Filled by the node issue; empty until then.

pub mod network;
