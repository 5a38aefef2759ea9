//! A record's payload encoded at its exact size.
//!
//! `serde_json::to_vec` grows its vector by doubling: an encoding of 1.1 KiB copies itself
//! on each growth and ends in a 2 KiB allocation, and a `Bytes` made from that vector keeps the
//! whole allocation for as long as the record lives (the memory bus keeps its records until
//! every group has read them, and the audit trail's for good). Encoding into a buffer each
//! thread keeps, then copying out exactly what was written, costs one copy of the payload and
//! no growth, and the record holds only its own bytes.

use bytes::Bytes;
use serde::Serialize;
use std::cell::RefCell;

/// A thread's buffer is let go after an encoding larger than this, so that one large record
/// does not stay allocated for the thread's life.
const KEPT_CAPACITY: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `value` as compact JSON, in a `Bytes` of exactly its length.
pub fn encode(value: &impl Serialize) -> serde_json::Result<Bytes> {
    BUFFER.with(|buffer| {
        // A serializer that re-enters this function (none does) gets a buffer of its own.
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            return serde_json::to_vec(value).map(|v| Bytes::copy_from_slice(&v));
        };
        buffer.clear();
        let written = serde_json::to_writer(&mut *buffer, value);
        let encoded = written.map(|()| Bytes::copy_from_slice(&buffer));
        if buffer.capacity() > KEPT_CAPACITY {
            *buffer = Vec::new();
        }
        encoded
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_is_the_json_and_holds_nothing_more() {
        let value =
            json!({"case_id": "c-1", "form": {"name": "张三", "note": "a \"quoted\" word"}});
        let encoded = encode(&value).unwrap();
        assert_eq!(&encoded[..], serde_json::to_vec(&value).unwrap().as_slice());
        let big = json!({"text": "x".repeat(KEPT_CAPACITY * 2)});
        assert_eq!(
            encode(&big).unwrap().len(),
            serde_json::to_vec(&big).unwrap().len()
        );
        BUFFER.with(|buffer| assert!(buffer.borrow().capacity() <= KEPT_CAPACITY));
        assert_eq!(
            encode(&value).unwrap(),
            encoded,
            "the buffer is cleared between records"
        );
    }

    #[test]
    fn a_value_that_cannot_be_encoded_is_an_error() {
        let map = std::collections::BTreeMap::from([((1, 2), "a tuple key is no JSON key")]);
        assert!(encode(&map).is_err());
        assert_eq!(&encode(&"after").unwrap()[..], b"\"after\"");
    }
}
