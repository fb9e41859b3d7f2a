//! The node's libp2p identity and the addresses of its peers.
//!
//! A node's network identity is an ed25519 key kept in its home directory as
//! a genesis key file (`genesis::write_key_file` / `read_key_file`); genesis
//! lists each node's peer id, derived here from that key. Reading and writing
//! the file is the caller's job: this module only converts.

use libp2p::{Multiaddr, PeerId};

use super::NetworkError;

/// The libp2p keypair for a node key: the same ed25519 secret, so the peer id
/// in genesis can be computed from the key file alone.
pub fn libp2p_keypair(key: &crypto::Keypair) -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::ed25519_from_bytes(key.seed())
        .expect("every 32-byte seed is a valid ed25519 secret key")
}

/// The peer id a node with this key has on the network.
pub fn peer_id_of(key: &crypto::Keypair) -> PeerId {
    libp2p_keypair(key).public().to_peer_id()
}

/// Parses a genesis or config address such as `/ip4/127.0.0.1/tcp/26656`.
pub fn parse_address(text: &str) -> Result<Multiaddr, NetworkError> {
    let invalid = |reason: String| NetworkError::InvalidAddress {
        text: text.to_owned(),
        reason,
    };
    let address: Multiaddr = text
        .trim()
        .parse()
        .map_err(|error| invalid(format!("{error}")))?;
    if address.is_empty() {
        return Err(invalid("the address is empty".to_owned()));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_is_derived_from_the_key_seed() {
        let key = crypto::Keypair::from_seed([7; 32]);
        let again = crypto::Keypair::from_seed([7; 32]);
        let other = crypto::Keypair::from_seed([8; 32]);
        assert_eq!(peer_id_of(&key), peer_id_of(&again));
        assert_ne!(peer_id_of(&key), peer_id_of(&other));
        assert_eq!(peer_id_of(&key), libp2p_keypair(&key).public().to_peer_id());
    }

    #[test]
    fn libp2p_public_key_is_the_node_public_key() {
        let key = crypto::Keypair::from_seed([3; 32]);
        let public = libp2p_keypair(&key)
            .public()
            .try_into_ed25519()
            .expect("an ed25519 key");
        assert_eq!(public.to_bytes(), key.public().0);
    }

    #[test]
    fn addresses_parse_and_garbage_is_refused() {
        let address = parse_address("/ip4/127.0.0.1/tcp/26656").expect("valid");
        assert_eq!(address.to_string(), "/ip4/127.0.0.1/tcp/26656");
        for bad in ["", "127.0.0.1:26656", "/ip4/300.0.0.1/tcp/1", "/tcp/x"] {
            let error = parse_address(bad).expect_err(bad);
            assert!(
                matches!(error, NetworkError::InvalidAddress { .. }),
                "{bad}: {error}"
            );
        }
    }
}
