//! The per-message crypto floor: the CPU time no node can go below for an
//! accepted message, on this machine, on one core.
//!
//! The floor is the three operations PROTOCOL §3–§4 impose on the node for
//! every message: open the HPKE envelope (one X25519 multiplication, the
//! key schedule, ChaCha20Poly1305), verify the sender's signature strictly
//! (Ed25519), and sign the receipt (Ed25519). Measured on the calling
//! thread in CPU time (`/proc/thread-self/stat`), not wall time, so that a
//! busy machine that takes the core away between iterations does not count;
//! each figure is the fastest of [`ROUNDS`] rounds of at least
//! [`MIN_CPU_SECONDS`] of CPU, so that the clock's 10 ms ticks do not
//! matter and a round slowed by the machine does not count. The same measure with the parsing the
//! node does around the crypto (the envelope's JSON and base64, the
//! message's schema, the leaf hash) is reported beside it.

use std::time::Duration;

use anyhow::{Context, bail};
use sealchain_shared::envelope::Envelope;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::message::{self, Message, MessageBuilder, SignedMessage};
use sealchain_shared::{SigningKey, keys, receipt};
use serde::Serialize;

/// Least CPU time of each of the [`ROUNDS`] rounds of a figure.
pub const MIN_CPU_SECONDS: f64 = 1.0;
/// Rounds per figure; the fastest counts (a shared or virtual machine can
/// only make a round slower, by taking the core away or from the cache).
pub const ROUNDS: usize = 3;

/// The floor, in CPU microseconds per message.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// HPKE open + strict verify + receipt signature.
    pub floor_us: f64,
    /// HPKE open alone.
    pub open_us: f64,
    /// Strict Ed25519 verification alone.
    pub verify_us: f64,
    /// Receipt signature alone.
    pub sign_us: f64,
    /// The floor with the node's parsing: envelope JSON and base64, the
    /// message schema, the leaf hash.
    pub with_parsing_us: f64,
    /// Distinct envelopes cycled through.
    pub envelopes: usize,
}

/// CPU time of the calling thread. Linux reports it in clock ticks of
/// 1/100 s (`USER_HZ`, 100 on every architecture Linux runs on).
pub fn thread_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").context("reading /proc/thread-self/stat")?;
    cpu_of_stat(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` (or a thread's) line.
pub fn cpu_of_stat(stat: &str) -> anyhow::Result<Duration> {
    // The command name may hold spaces and parentheses: fields count from
    // the last ')'. utime and stime are fields 14 and 15 of the line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("not a stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("a short stat line")?
            .parse::<u64>()
            .context("a stat field is not a number")
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 10))
}

/// Runs `step` over `0..n` repeatedly until it used [`MIN_CPU_SECONDS`],
/// [`ROUNDS`] times; CPU microseconds per step in the fastest round.
fn per_step(n: usize, mut step: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let started = thread_cpu()?;
        let mut steps = 0u64;
        loop {
            for i in 0..n {
                step(i)?;
            }
            steps += n as u64;
            let used = thread_cpu()? - started;
            if used.as_secs_f64() >= MIN_CPU_SECONDS {
                best = best.min(used.as_secs_f64() * 1e6 / steps as f64);
                break;
            }
        }
    }
    Ok(best)
}

/// Measures the floor over `envelopes` distinct messages of the size a
/// small sensor reading has (277 bytes of `message_bytes`, plus
/// `body_bytes` of padding).
pub fn measure(envelopes: usize, body_bytes: usize) -> anyhow::Result<Floor> {
    let envelopes = envelopes.max(1);
    let node = keys::generate_signing_key()?;
    let node_id = node.verifying_key().to_bytes();
    let encryption = EncryptionKey::generate()?;
    let client: SigningKey = keys::generate_signing_key()?;
    let pad = "x".repeat(body_bytes);
    let builder = MessageBuilder::new(
        node_id,
        "sensors/temp",
        &serde_json::json!({"reading": 21.5, "unit": "C", "pad": pad}),
    )?;
    let mut bodies = Vec::with_capacity(envelopes);
    let mut sealed = Vec::with_capacity(envelopes);
    let mut signed = Vec::with_capacity(envelopes);
    for _ in 0..envelopes {
        let message = builder.sign(&client)?;
        let envelope = Envelope::seal(&encryption.public_key(), &message.to_bytes())?;
        bodies.push(envelope.to_json());
        sealed.push(envelope);
        signed.push(message);
    }
    let sender = client.verifying_key().to_bytes();
    let leaves: Vec<_> = signed.iter().map(SignedMessage::leaf_hash).collect();
    let received_at = sealchain_shared::now_ms();

    let floor_us = per_step(envelopes, |i| {
        let plaintext = sealed[i].open(&encryption).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (signature, message_bytes) = plaintext.split_at(message::SIGNATURE_LEN);
        let signature: &[u8; 64] = signature.try_into()?;
        message::verify(&sender, message_bytes, signature).map_err(|e| anyhow::anyhow!("{e}"))?;
        std::hint::black_box(receipt::sign(&node, i as u64, &leaves[i], received_at));
        Ok(())
    })?;
    let open_us = per_step(envelopes, |i| {
        std::hint::black_box(sealed[i].open(&encryption).map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(())
    })?;
    let verify_us = per_step(envelopes, |i| {
        message::verify(&sender, &signed[i].message_bytes, &signed[i].signature).map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let sign_us = per_step(envelopes, |i| {
        std::hint::black_box(receipt::sign(&node, i as u64, &leaves[i], received_at));
        Ok(())
    })?;
    let with_parsing_us = per_step(envelopes, |i| {
        let envelope = Envelope::from_json(bodies[i].as_bytes())?;
        let plaintext = envelope.open(&encryption).map_err(|e| anyhow::anyhow!("{e}"))?;
        let signed = SignedMessage::from_bytes(&plaintext)?;
        let parsed = Message::parse(&signed.message_bytes, message::DEFAULT_MAX_MESSAGE_BYTES + body_bytes)?;
        if parsed.node != node_id {
            bail!("the message names another node");
        }
        message::verify(&parsed.sender, &signed.message_bytes, &signed.signature)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let leaf = signed.leaf_hash();
        std::hint::black_box(receipt::sign(&node, i as u64, &leaf, received_at));
        Ok(())
    })?;
    Ok(Floor {
        floor_us,
        open_us,
        verify_us,
        sign_us,
        with_parsing_us,
        envelopes,
    })
}

/// The floor as text.
pub fn describe(f: &Floor) -> String {
    format!(
        "floor      {:.1} µs CPU per message on one core: HPKE open {:.1} + strict verify {:.1} + receipt sign {:.1}\n\
         parsing    {:.1} µs with the envelope's JSON, the message schema and the leaf hash\n\
         bound      {:.0} messages/s per core at the floor\n",
        f.floor_us,
        f.open_us,
        f.verify_us,
        f.sign_us,
        f.with_parsing_us,
        1e6 / f.floor_us
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        // pid (comm) state ppid … utime stime: fields 14 and 15.
        let line = "42 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0";
        assert_eq!(cpu_of_stat(line).unwrap(), Duration::from_secs(3));
        assert!(cpu_of_stat("42 (x) S 1 2").is_err());
        assert!(cpu_of_stat("no parenthesis").is_err());
        assert!(thread_cpu().is_ok());
    }
}
