//! Signed notes, checkpoints, verifier keys, tile paths, entry bundles and
//! tlog-proof bundles (PROTOCOL §9): any input fails or round-trips to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::note::{Checkpoint, Note, NoteVerifier};
use sealchain_shared::tlog::{self, TileId};
use sealchain_shared::tlog_proof::ProofBundle;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(Note::parse(note.to_text().as_bytes()).expect("re-parses"), note);
        if let Ok(cp) = Checkpoint::parse(&note.text) {
            assert_eq!(cp.to_text(), note.text, "a checkpoint has one spelling");
        }
    }
    if let Ok(bundle) = ProofBundle::parse(data) {
        assert_eq!(bundle.to_text().as_bytes(), data, "a proof bundle has one spelling");
    }
    // Whatever the width asked for, a bundle that splits re-joins to itself.
    let width = data.first().copied().map_or(0, u64::from);
    if let Ok(entries) = tlog::split_entry_bundle(data.get(1..).unwrap_or_default(), width) {
        let mut joined = Vec::new();
        for entry in &entries {
            tlog::push_entry(&mut joined, &[entry]).expect("a split entry fits a u16 length");
        }
        assert_eq!(joined.as_slice(), data.get(1..).unwrap_or_default());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(v) = NoteVerifier::parse(text) {
            assert_eq!(v.to_vkey(), text, "a verifier key has one spelling");
        }
        if let Some(id) = TileId::parse(text) {
            assert_eq!(id.path(), format!("tile/{text}"), "a tile path has one spelling");
        }
    }
});
