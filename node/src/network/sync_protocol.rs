//! The block sync protocol: its messages and their wire codec.
//!
//! A request-response protocol named per chain (`/scf/<chain id hex>/sync/1`).
//! Each message is a 4-byte big-endian length followed by the borsh encoding.
//! The length is checked against the message kind's limit before anything is
//! read or allocated, and the body is read as it arrives (a peer announcing a
//! large body and sending nothing costs nothing). An encoded message over
//! the limit is refused on the sending side too. A `Blocks` or `Block`
//! answer is written straight from the blocks it holds, in pieces, never
//! copied whole into a frame first.
//!
//! What the blocks and certificates contain is not this module's business:
//! they travel as opaque bytes, decoded and verified by the node.

use std::io;

use borsh::{BorshDeserialize, BorshSerialize};
use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;

/// Most bytes of an encoded sync request.
pub const MAX_SYNC_REQUEST_BYTES: usize = 1024;
/// Most bytes of an encoded sync response.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A question to a peer about its chain.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// The peer's committed height.
    Status,
    /// Committed blocks `from..=to` with their certificates (the peer may
    /// answer fewer, from the start of the range).
    Blocks { from: u64, to: u64 },
    /// A block the peer holds, committed or proposed, by its hash.
    BlockByHash(crypto::Hash),
}

/// A peer's answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    Status {
        height: u64,
    },
    Blocks(Vec<SyncedBlock>),
    Block(Option<Vec<u8>>),
    /// The peer could not answer; the text says why.
    Error(String),
}

/// A committed block and its commit certificate, as opaque bytes (the ledger
/// `Block` and the consensus `CommitCertificate`, borsh-encoded).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncedBlock {
    pub block: Vec<u8>,
    pub certificate: Vec<u8>,
}

/// The protocol name for a chain: `/scf/<chain id hex>/sync/1`.
pub fn protocol_name(chain_id: &crypto::ChainId) -> StreamProtocol {
    StreamProtocol::try_from_owned(format!("/scf/{}/sync/1", chain_id.0.to_hex()))
        .expect("the protocol name starts with a slash")
}

/// Length-prefixed borsh with a limit per direction.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    max_request_bytes: usize,
    max_response_bytes: usize,
}

impl Default for SyncCodec {
    fn default() -> Self {
        SyncCodec {
            max_request_bytes: MAX_SYNC_REQUEST_BYTES,
            max_response_bytes: MAX_SYNC_RESPONSE_BYTES,
        }
    }
}

impl SyncCodec {
    /// A codec with other limits (tests use small ones).
    pub fn with_limits(max_request_bytes: usize, max_response_bytes: usize) -> SyncCodec {
        SyncCodec {
            max_request_bytes,
            max_response_bytes,
        }
    }
}

/// The encoded size of a message, computed without encoding it.
pub fn encoded_len<T: BorshSerialize>(message: &T) -> usize {
    borsh::object_length(message).unwrap_or(usize::MAX)
}

fn too_large(what: &str, size: usize, limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("sync {what} of {size} bytes exceeds the limit of {limit} bytes"),
    )
}

async fn read_message<T, M>(io: &mut T, what: &str, limit: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: BorshDeserialize,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let size = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if size > limit {
        return Err(too_large(what, size, limit));
    }
    let mut body = Vec::new();
    // `take` bounds the read; the buffer grows only as bytes arrive.
    let read = io.take(size as u64).read_to_end(&mut body).await?;
    if read != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("sync {what} announced {size} bytes but the stream ended after {read}"),
        ));
    }
    borsh::from_slice(&body).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed sync {what}: {error}"),
        )
    })
}

/// The length prefix of a message, checked against the limit.
fn prefix(what: &str, size: usize, limit: usize) -> io::Result<[u8; 4]> {
    if size > limit {
        return Err(too_large(what, size, limit));
    }
    let prefix = u32::try_from(size).map_err(|_| too_large(what, size, u32::MAX as usize))?;
    Ok(prefix.to_be_bytes())
}

async fn write_message<T, M>(io: &mut T, what: &str, limit: usize, message: &M) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: BorshSerialize,
{
    let size = encoded_len(message);
    let mut frame = Vec::with_capacity(4 + size);
    frame.extend_from_slice(&prefix(what, size, limit)?);
    message.serialize(&mut frame)?;
    io.write_all(&frame).await?;
    io.flush().await
}

/// Pieces smaller than this are gathered before being written (a write is
/// a frame on the multiplexed stream); larger ones are written in place.
const GATHER_BYTES: usize = 16 * 1024;

/// Writes many small pieces as few frames and large ones without copying.
struct Pieces {
    gathered: Vec<u8>,
}

impl Pieces {
    fn new() -> Pieces {
        Pieces {
            gathered: Vec::with_capacity(GATHER_BYTES),
        }
    }

    async fn put<T: AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut T,
        bytes: &[u8],
    ) -> io::Result<()> {
        if self.gathered.len() + bytes.len() <= GATHER_BYTES {
            self.gathered.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush(io).await?;
        if bytes.len() < GATHER_BYTES {
            self.gathered.extend_from_slice(bytes);
            Ok(())
        } else {
            io.write_all(bytes).await
        }
    }

    /// A borsh `Vec<u8>`: its u32 little-endian length, then the bytes.
    async fn put_bytes<T: AsyncWrite + Unpin + Send>(
        &mut self,
        io: &mut T,
        bytes: &[u8],
    ) -> io::Result<()> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| too_large("response", bytes.len(), u32::MAX as usize))?;
        self.put(io, &len.to_le_bytes()).await?;
        self.put(io, bytes).await
    }

    async fn flush<T: AsyncWrite + Unpin + Send>(&mut self, io: &mut T) -> io::Result<()> {
        if !self.gathered.is_empty() {
            io.write_all(&self.gathered).await?;
            self.gathered.clear();
        }
        Ok(())
    }
}

/// Borsh variant tags of [`SyncResponse`] (its declaration order).
const BLOCKS_TAG: u8 = 1;
const BLOCK_TAG: u8 = 2;

/// A response in exactly the borsh encoding, written from the blocks it
/// holds without building the whole frame (a `Blocks` answer may be many
/// megabytes).
async fn write_response_in_pieces<T>(
    io: &mut T,
    limit: usize,
    response: &SyncResponse,
) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let size = encoded_len(response);
    let prefix = prefix("response", size, limit)?;
    let mut pieces = Pieces::new();
    pieces.put(io, &prefix).await?;
    match response {
        SyncResponse::Blocks(blocks) => {
            let count = u32::try_from(blocks.len())
                .map_err(|_| too_large("response", blocks.len(), u32::MAX as usize))?;
            pieces.put(io, &[BLOCKS_TAG]).await?;
            pieces.put(io, &count.to_le_bytes()).await?;
            for synced in blocks {
                pieces.put_bytes(io, &synced.block).await?;
                pieces.put_bytes(io, &synced.certificate).await?;
            }
        }
        SyncResponse::Block(Some(block)) => {
            pieces.put(io, &[BLOCK_TAG, 1]).await?;
            pieces.put_bytes(io, block).await?;
        }
        small => {
            let body = borsh::to_vec(small)?;
            pieces.put(io, &body).await?;
        }
    }
    pieces.flush(io).await?;
    io.flush().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, "request", self.max_request_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, "response", self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, "request", self.max_request_bytes, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_response_in_pieces(io, self.max_response_bytes, &response).await
    }
}

#[cfg(test)]
mod tests {
    use libp2p::futures::io::Cursor;
    use libp2p::request_response::Codec;

    use super::*;

    fn protocol() -> StreamProtocol {
        protocol_name(&crypto::ChainId(crypto::Hash([9; 32])))
    }

    async fn round_trip_response(codec: &mut SyncCodec, response: SyncResponse) -> SyncResponse {
        let mut wire = Cursor::new(Vec::new());
        codec
            .write_response(&protocol(), &mut wire, response)
            .await
            .expect("write");
        let mut wire = Cursor::new(wire.into_inner());
        codec
            .read_response(&protocol(), &mut wire)
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn every_message_survives_the_wire() {
        let mut codec = SyncCodec::default();
        for request in [
            SyncRequest::Status,
            SyncRequest::Blocks { from: 3, to: 9 },
            SyncRequest::BlockByHash(crypto::Hash([5; 32])),
        ] {
            let mut wire = Cursor::new(Vec::new());
            codec
                .write_request(&protocol(), &mut wire, request.clone())
                .await
                .expect("write");
            let mut wire = Cursor::new(wire.into_inner());
            let read = codec.read_request(&protocol(), &mut wire).await;
            assert_eq!(read.expect("read"), request);
        }
        for response in [
            SyncResponse::Status { height: 42 },
            SyncResponse::Blocks(vec![SyncedBlock {
                block: vec![1, 2, 3],
                certificate: vec![4, 5],
            }]),
            SyncResponse::Block(Some(vec![7; 100])),
            SyncResponse::Block(None),
            SyncResponse::Error("no such height".into()),
        ] {
            assert_eq!(
                round_trip_response(&mut codec, response.clone()).await,
                response
            );
        }
    }

    #[tokio::test]
    async fn the_wire_format_is_a_length_prefix_and_borsh() {
        let mut wire = Cursor::new(Vec::new());
        SyncCodec::default()
            .write_request(
                &protocol(),
                &mut wire,
                SyncRequest::Blocks { from: 1, to: 2 },
            )
            .await
            .expect("write");
        assert_eq!(
            hex::encode(wire.into_inner()),
            "00000011010100000000000000\
             0200000000000000"
        );
    }

    /// The pieces written for big answers are exactly the length prefix and
    /// the borsh encoding, whatever the block sizes (below, around and
    /// above the gathering size).
    #[tokio::test]
    async fn answers_written_in_pieces_are_the_borsh_encoding() {
        let blocks = |sizes: &[usize]| {
            SyncResponse::Blocks(
                sizes
                    .iter()
                    .enumerate()
                    .map(|(index, &size)| SyncedBlock {
                        block: (0..size).map(|byte| (byte + index) as u8).collect(),
                        certificate: vec![index as u8; 100 + index],
                    })
                    .collect(),
            )
        };
        for response in [
            blocks(&[]),
            blocks(&[0, 1, 2]),
            blocks(&[GATHER_BYTES - 8, 3, GATHER_BYTES, 70_000, 5]),
            SyncResponse::Block(Some(vec![9; 3 * GATHER_BYTES + 1])),
            SyncResponse::Block(None),
            SyncResponse::Status { height: 7 },
            SyncResponse::Error("no".into()),
        ] {
            let mut wire = Cursor::new(Vec::new());
            SyncCodec::default()
                .write_response(&protocol(), &mut wire, response.clone())
                .await
                .expect("write");
            let body = borsh::to_vec(&response).expect("encode");
            let mut expected = (body.len() as u32).to_be_bytes().to_vec();
            expected.extend_from_slice(&body);
            assert_eq!(wire.into_inner(), expected, "{response:?}");
        }
    }

    #[tokio::test]
    async fn an_announced_length_over_the_limit_is_refused_before_reading() {
        let mut codec = SyncCodec::default();
        // Announces 100 MiB and sends nothing: refused on the prefix alone.
        let mut wire = Cursor::new((100u32 * 1024 * 1024).to_be_bytes().to_vec());
        let error = codec
            .read_response(&protocol(), &mut wire)
            .await
            .expect_err("over the limit");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("exceeds the limit"), "{error}");

        let mut wire = Cursor::new(2000u32.to_be_bytes().to_vec());
        let error = codec
            .read_request(&protocol(), &mut wire)
            .await
            .expect_err("over the limit");
        assert!(
            error.to_string().contains("request of 2000 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_oversize_message_is_not_sent() {
        let mut codec = SyncCodec::with_limits(16, 64);
        let mut wire = Cursor::new(Vec::new());
        let response = SyncResponse::Block(Some(vec![0; 100]));
        let error = codec
            .write_response(&protocol(), &mut wire, response)
            .await
            .expect_err("over the limit");
        assert!(
            error.to_string().contains("exceeds the limit of 64"),
            "{error}"
        );
        assert!(wire.into_inner().is_empty(), "nothing was written");
    }

    #[tokio::test]
    async fn truncated_and_malformed_bodies_are_errors() {
        let mut codec = SyncCodec::default();
        let mut truncated = 10u32.to_be_bytes().to_vec();
        truncated.extend_from_slice(&[0, 1, 2]);
        let error = codec
            .read_response(&protocol(), &mut Cursor::new(truncated))
            .await
            .expect_err("truncated");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

        // A variant tag that does not exist.
        let mut unknown = 1u32.to_be_bytes().to_vec();
        unknown.push(9);
        let error = codec
            .read_request(&protocol(), &mut Cursor::new(unknown))
            .await
            .expect_err("unknown variant");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        // Trailing bytes after a complete message.
        let mut trailing = 2u32.to_be_bytes().to_vec();
        trailing.extend_from_slice(&[0, 0]);
        let error = codec
            .read_request(&protocol(), &mut Cursor::new(trailing))
            .await
            .expect_err("trailing bytes");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        // A vector announcing more elements than the body holds.
        let mut lying = 9u32.to_be_bytes().to_vec();
        lying.push(2); // Block
        lying.push(1); // Some
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        lying.extend_from_slice(&[1, 2, 3]);
        let error = codec
            .read_response(&protocol(), &mut Cursor::new(lying))
            .await
            .expect_err("lying length");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
