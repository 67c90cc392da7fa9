//! Signed notes, checkpoints, verifier keys and tile paths (PROTOCOL §9):
//! any input fails or round-trips to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealchain_shared::note::{Checkpoint, Note, NoteVerifier};
use sealchain_shared::tlog::TileId;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(Note::parse(note.to_text().as_bytes()).expect("re-parses"), note);
        if let Ok(cp) = Checkpoint::parse(&note.text) {
            assert_eq!(cp.to_text(), note.text, "a checkpoint has one spelling");
        }
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
