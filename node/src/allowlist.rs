//! The allowlist in memory (`--client-policy allowlist`).
//!
//! Checking each message's sender against the `clients` table cost a
//! database round trip per message. Instead every node process keeps the
//! whole list in memory and follows its changes: a trigger on `clients`
//! announces each change on the channel [`CHANNEL`] in the transaction that
//! makes it (the admin routes' inserts and deletes, and an operator's own
//! SQL), and a thread of each node LISTENs on its own session.
//!
//! Staleness is bounded by [`FRESH_FOR`]: the thread confirms its session
//! with a round trip every [`HEARTBEAT`], and a notification committed
//! before that round trip has arrived by the time it completes, so a list
//! whose last heartbeat is younger than [`FRESH_FOR`] holds every change
//! committed until [`FRESH_FOR`] ago at the latest (in practice within one
//! heartbeat). While it cannot say that — the session is down, being
//! re-established, or too slow — [`Allowlist::allowed`] answers `None` and
//! the caller asks the database, as before. After every (re)connection the
//! thread LISTENs first and loads the whole list second, so no change falls
//! between the two.

use std::collections::HashSet;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

use crate::db::repo;

/// The channel the `clients` trigger notifies.
pub const CHANNEL: &str = "sealchain_clients";
/// The `application_name` of the listening session.
pub const APPLICATION_NAME: &str = "sealchain-allowlist";
/// How often the listening session is confirmed with a round trip.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// How long after its last confirmed heartbeat the list is trusted; also
/// the documented bound on how late a node sees an allowlist change.
pub const FRESH_FOR: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Known {
    ids: HashSet<[u8; 32]>,
    /// When the listening session last answered; `None` while the list is
    /// not being followed.
    confirmed: Option<Instant>,
}

/// The registered client ids, kept current by a listener thread.
#[derive(Debug, Default)]
pub struct Allowlist {
    known: RwLock<Known>,
}

impl Allowlist {
    /// Whether `client_id` is registered, if the list is fresh; `None`
    /// means "ask the database".
    pub fn allowed(&self, client_id: &[u8; 32]) -> Option<bool> {
        let known = self.known.read().ok()?;
        let confirmed = known.confirmed?;
        (confirmed.elapsed() < FRESH_FOR).then(|| known.ids.contains(client_id))
    }

    /// A change this process just committed: applied at once, so the node
    /// that made it never answers by the old list (its notification
    /// follows and sets the same).
    pub fn changed(&self, client_id: [u8; 32], allowed: bool) {
        if let Ok(mut known) = self.known.write() {
            if allowed {
                known.ids.insert(client_id);
            } else {
                known.ids.remove(&client_id);
            }
        }
    }

    fn replace(&self, ids: HashSet<[u8; 32]>) {
        if let Ok(mut known) = self.known.write() {
            known.ids = ids;
            known.confirmed = Some(Instant::now());
        }
    }

    fn confirm(&self) {
        if let Ok(mut known) = self.known.write() {
            known.confirmed = Some(Instant::now());
        }
    }

    fn forget(&self) {
        if let Ok(mut known) = self.known.write() {
            known.confirmed = None;
        }
    }

    /// Applies one notification; `false` if the whole list must be read
    /// again.
    fn apply(&self, payload: &str) -> bool {
        let (add, hex_id) = match payload.split_at_checked(1) {
            Some(("+", rest)) => (true, rest),
            Some(("-", rest)) => (false, rest),
            _ => return false,
        };
        let Ok(id) = sealchain_shared::hexbytes::decode_hex::<32>(hex_id) else {
            return false;
        };
        self.changed(id, add);
        true
    }

    /// Starts following the list of the database at `url` on a thread of
    /// its own, which ends when the returned list is dropped.
    pub fn follow(url: String, statement_timeout: Duration) -> std::io::Result<Arc<Self>> {
        let list = Arc::new(Self::default());
        let weak = Arc::downgrade(&list);
        std::thread::Builder::new()
            .name(APPLICATION_NAME.into())
            .spawn(move || listen(&weak, &url, statement_timeout))?;
        Ok(list)
    }
}

/// The listener thread: (re)connects, loads, follows, until the list is
/// dropped.
fn listen(list: &Weak<Allowlist>, url: &str, statement_timeout: Duration) {
    let mut delay = HEARTBEAT;
    loop {
        let Some(strong) = list.upgrade() else { return };
        strong.forget();
        drop(strong);
        match follow_session(list, url, statement_timeout) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "allowlist listener lost its session; asking the database per message until it is back");
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// One session: LISTEN, load, then heartbeat and apply notifications.
/// `Ok` when the list was dropped.
fn follow_session(list: &Weak<Allowlist>, url: &str, statement_timeout: Duration) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(url)?;
    conn.batch_execute(&format!(
        "SET application_name = '{APPLICATION_NAME}'; SET statement_timeout = {}; LISTEN {CHANNEL}",
        statement_timeout.as_millis()
    ))?;
    reload(list, &mut conn)?;
    tracing::debug!("following the allowlist");
    loop {
        std::thread::sleep(HEARTBEAT);
        let Some(strong) = list.upgrade() else {
            return Ok(());
        };
        diesel::sql_query("SELECT 1").execute(&mut conn)?;
        let mut stale = false;
        for notification in conn.notifications_iter() {
            let notification = notification?;
            stale |= !strong.apply(&notification.payload);
        }
        drop(strong);
        if stale {
            reload(list, &mut conn)?;
        } else if let Some(strong) = list.upgrade() {
            strong.confirm();
        }
    }
}

fn reload(list: &Weak<Allowlist>, conn: &mut PgConnection) -> anyhow::Result<()> {
    let rows = repo::list_clients(conn)?;
    let ids = rows
        .iter()
        .filter_map(|r| <[u8; 32]>::try_from(r.client_id.as_slice()).ok())
        .collect();
    if let Some(strong) = list.upgrade() {
        strong.replace(ids);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn answers_only_while_fresh_and_applies_changes() {
        let list = Allowlist::default();
        assert_eq!(list.allowed(&[1; 32]), None, "not followed yet: ask the database");
        list.replace(HashSet::from([[1; 32]]));
        assert_eq!(list.allowed(&[1; 32]), Some(true));
        assert_eq!(list.allowed(&[2; 32]), Some(false));
        assert!(list.apply(&format!("+{}", hex::encode([2; 32]))));
        assert!(list.apply(&format!("-{}", hex::encode([1; 32]))));
        assert_eq!(list.allowed(&[1; 32]), Some(false));
        assert_eq!(list.allowed(&[2; 32]), Some(true));
        // Anything else asks for a reload.
        for payload in ["*", "", "+", "+zz", "x00", &format!("-{}", hex::encode([1; 31]))] {
            assert!(!list.apply(payload), "{payload:?}");
        }
        list.forget();
        assert_eq!(list.allowed(&[2; 32]), None, "a list not followed is not trusted");
        list.confirm();
        if let Ok(mut known) = list.known.write() {
            known.confirmed = Instant::now().checked_sub(FRESH_FOR);
        }
        assert_eq!(
            list.allowed(&[2; 32]),
            None,
            "a list older than FRESH_FOR is not trusted"
        );
    }
}
