//! One active projector per projection, however many instances run. Order matters to a
//! projection, so only the instance holding a PostgreSQL session-level advisory lock
//! (keyed by the projection's name) pulls and applies events; the others are standby:
//! they serve REST as usual and try the lock every `PROJECTOR_STANDBY_POLL`. When the
//! active instance dies its session ends, PostgreSQL releases the lock, and a standby
//! takes over from the checkpoint.
//!
//! The lock lives on a dedicated connection (not one of the pool's, which come and go),
//! and the active projector applies its batches on that same connection. That is the
//! fence: a batch can only commit in the session that holds the lock, so an instance
//! whose lock session was ended (by a restart of PostgreSQL, `pg_terminate_backend`, a
//! broken network) cannot commit one more batch behind its successor's back; its next
//! statement fails and it goes back to standby.

use std::time::Duration;

use common::shutdown::CancellationToken;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};

use crate::metrics::METRICS;

/// How long a check of the lock session may take before the session counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory-lock key of `projection`: FNV-1a (64 bit) of a prefixed name, stable
/// across builds and Rust versions (unlike `std`'s hasher), so every instance and every
/// version of this code agrees on it.
pub fn lock_key(projection: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "smart-support projector ".bytes().chain(projection.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// This instance holds the projection's lock: the connection whose session holds it.
/// Dropping it closes the session, which releases the lock.
pub struct Leadership {
    conn: PgConnection,
    projection: String,
    key: i64,
    poll: Duration,
}

impl Leadership {
    /// Waits as a standby until this instance holds the lock of `projection`, trying
    /// every `poll`; `None` when `shutdown` comes first.
    pub async fn acquire(
        pool: &PgPool,
        projection: &str,
        poll: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Leadership> {
        METRICS.projector_active.set(0);
        let key = lock_key(projection);
        let mut conn: Option<PgConnection> = None;
        let mut said_standby = false;
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            if conn.is_none() {
                match PgConnection::connect_with(&lock_options(pool)).await {
                    Ok(c) => conn = Some(c),
                    Err(err) => {
                        tracing::warn!(projection, error = %err, "projector standby: cannot connect to try the lock")
                    }
                }
            }
            if let Some(c) = conn.as_mut() {
                let taken: sqlx::Result<bool> =
                    sqlx::query_scalar("select pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(&mut *c)
                        .await;
                match taken {
                    Ok(true) => {
                        METRICS.projector_active.set(1);
                        tracing::info!(
                            projection,
                            lock_key = key,
                            "projector active: this instance holds the lock"
                        );
                        return Some(Leadership {
                            conn: conn.take().expect("connected above"),
                            projection: projection.to_owned(),
                            key,
                            poll,
                        });
                    }
                    Ok(false) => {
                        if !said_standby {
                            tracing::info!(
                                projection,
                                lock_key = key,
                                "projector standby: another instance holds the lock"
                            );
                            said_standby = true;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(projection, error = %err, "projector standby: cannot try the lock; reconnecting");
                        conn = None;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// The connection whose session holds the lock: batches are applied on it, so none
    /// commits once the lock is gone.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// How often the active projector checks that it still holds the lock.
    pub fn check_every(&self) -> Duration {
        self.poll
    }

    /// Whether the session is alive and still holds the lock. A check that fails or
    /// takes longer than a few seconds counts as lost: the caller must step down.
    pub async fn holds(&mut self) -> bool {
        let check = sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from pg_locks where locktype = 'advisory' and granted
               and pid = pg_backend_pid() and objsubid = 1
               and classid = (($1::bigint >> 32) & 4294967295)::oid
               and objid = ($1::bigint & 4294967295)::oid)",
        )
        .bind(self.key)
        .fetch_one(&mut self.conn);
        match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(Ok(held)) => held,
            Ok(Err(err)) => {
                tracing::warn!(projection = self.projection, error = %err, "projector lock session broken");
                false
            }
            Err(_) => {
                tracing::warn!(
                    projection = self.projection,
                    "projector lock check timed out"
                );
                false
            }
        }
    }

    /// The lock is (or may be) lost: stop being active. Closes the session, which also
    /// releases the lock should PostgreSQL still think it is held.
    pub fn step_down(self) {
        METRICS.projector_active.set(0);
        tracing::warn!(
            projection = self.projection,
            "projector lost its lock: it stops applying and goes back to standby"
        );
    }

    /// Shutdown: end the session, which releases the lock for a standby at once.
    pub async fn release(self) {
        METRICS.projector_active.set(0);
        tracing::info!(
            projection = self.projection,
            "projector stopping: lock released"
        );
        let _ = self.conn.close().await;
    }
}

/// The pool's settings (URL, `search_path`) plus TCP keepalives on the server's side of
/// the lock session: if this host vanishes without closing its socket, PostgreSQL ends
/// the session (and releases the lock) in about half a minute instead of the operating
/// system's default of hours.
/// The lock session's options. It is also the session the active projector applies its
/// batches in, with `synchronous_commit = off`: a commit returns before its WAL reaches
/// the disk. A crash of PostgreSQL may then lose the last batches, their effects and
/// their checkpoint together (a transaction is still all or nothing), and the projector
/// applies them again from the stream: nothing is lost or counted twice, and the
/// projector does not wait for a disk flush per batch.
///
/// `plan_cache_mode = force_custom_plan`: every statement is planned for the tables as they
/// are now. PostgreSQL otherwise settles on a generic plan of a prepared statement after five
/// runs and keeps it until the table is next analyzed; on fresh tables (a new database, the
/// first minute before autovacuum's first pass) that plan is a sequential scan, and the
/// batch's look-ups of its turns and conversations then read the whole table while it grows:
/// 61 ms a batch instead of 0.6 ms, and the projector fell 100,000 events behind in the first
/// 30 s of a load run (docs/benchmarks.md, run A13). Planning costs well under a millisecond
/// per batch.
fn lock_options(pool: &PgPool) -> PgConnectOptions {
    let options = (*pool.connect_options()).clone();
    options
        .application_name("smart-support projector lock")
        .options([
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            ("synchronous_commit", "off"),
            ("plan_cache_mode", "force_custom_plan"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_fixed_for_a_projection_name() {
        assert_eq!(lock_key("projector"), lock_key("projector"));
        assert_ne!(lock_key("projector"), lock_key("other"));
        // Every version of the code must agree on the key: pinned.
        assert_eq!(
            lock_key(crate::projector::CONVERSATIONS),
            0x2b05_2df6_4f57_81d8
        );
    }
}
