//! The block and receipt decoders and their audit (PROTOCOL §7–§8): any
//! JSON either fails to decode or is audited without panicking; a block
//! that passes the audit re-encodes to its hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::api::{Block, BlockSummary, Receipt};
use sealchain_shared::audit::{self, Auditor};
use sealchain_shared::{SigningKey, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    let key: VerifyingKey = SigningKey::from_bytes(&[0x42; 32]).verifying_key();
    if let Ok(block) = serde_json::from_slice::<Block>(data) {
        let mut auditor = Auditor::starting_at(key, block.summary.message_count.max(1), block.summary.index, None);
        if auditor.check(&block).is_ok() {
            assert_eq!(block.summary.header().hash(), block.summary.hash.0);
        }
    }
    if let Ok(summary) = serde_json::from_slice::<BlockSummary>(data) {
        let _ = audit::verify_block_header(&summary, &key, summary.message_count.max(1), None);
    }
    if let Ok(receipt) = serde_json::from_slice::<Receipt>(data) {
        // Nobody holds the key's secret but the fuzzer's constant: a
        // receipt that verifies would be a forgery.
        let stranger = SigningKey::from_bytes(&[0x43; 32]).verifying_key();
        assert!(audit::verify_receipt(&receipt, &stranger, 100).is_err() || receipt.seq == u64::MAX);
        let _ = audit::verify_receipt(&receipt, &key, 100);
    }
});
