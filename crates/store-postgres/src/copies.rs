//! Plugin copies in the database: content-addressed, one row per hash, the bytes in chunks, so
//! that any host of a cluster can resume any run with exactly the plugin versions it started
//! with. The compile cache stays local to each host.

use super::PostgresStore;
use bulkhead_core::store::StoreError;
use std::io::{Read, Write};

/// Bytes per stored chunk.
pub const CHUNK: usize = 1 << 20;

impl PostgresStore {
    /// Whether the copy `hash` is stored.
    pub async fn has_plugin(&self, hash: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM plugin_copies WHERE hash = $1", &[&hash])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.is_some())
    }

    /// Stores what `bytes` reads as the copy `hash` unless one is there, a chunk at a time, in
    /// one transaction (hosts storing the same copy at once store it once). The caller checked
    /// that the bytes hash to `hash`.
    pub async fn put_plugin(&self, hash: &str, mut bytes: impl Read) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let claimed = tx
            .execute(
                "INSERT INTO plugin_copies (hash, size, chunks) VALUES ($1, 0, 0) ON CONFLICT (hash) DO NOTHING",
                &[&hash],
            )
            .await
            .map_err(|e| self.err(e))?;
        if claimed == 0 {
            return Ok(());
        }
        let (mut size, mut chunks) = (0i64, 0i32);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut filled = 0;
            while filled < CHUNK {
                match bytes.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(StoreError::Other {
                            path: self.name.clone(),
                            reason: format!("cannot read plugin copy {hash}: {e}"),
                        })
                    }
                }
            }
            if filled == 0 {
                break;
            }
            tx.execute(
                "INSERT INTO plugin_chunks (hash, chunk, bytes) VALUES ($1, $2, $3)",
                &[&hash, &chunks, &&buf[..filled]],
            )
            .await
            .map_err(|e| self.err(e))?;
            size += filled as i64;
            chunks += 1;
        }
        tx.execute(
            "UPDATE plugin_copies SET size = $2, chunks = $3 WHERE hash = $1",
            &[&hash, &size, &chunks],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Writes the copy `hash` to `out`, a chunk at a time; `false` if it is not stored. A copy
    /// whose chunks do not add up is an error naming it.
    pub async fn get_plugin(&self, hash: &str, out: &mut impl Write) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        let Some(head) = tx
            .query_opt(
                "SELECT size, chunks FROM plugin_copies WHERE hash = $1",
                &[&hash],
            )
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(false);
        };
        let size: i64 = head.try_get(0).map_err(|e| self.err(e))?;
        let chunks: i32 = head.try_get(1).map_err(|e| self.err(e))?;
        let mut written = 0i64;
        for chunk in 0..chunks {
            let row = tx
                .query_opt(
                    "SELECT bytes FROM plugin_chunks WHERE hash = $1 AND chunk = $2",
                    &[&hash, &chunk],
                )
                .await
                .map_err(|e| self.err(e))?
                .ok_or_else(|| {
                    self.corrupt(format!(
                        "plugin copy {hash}: chunk {chunk} of {chunks} is missing"
                    ))
                })?;
            let bytes: &[u8] = row.try_get(0).map_err(|e| self.err(e))?;
            out.write_all(bytes).map_err(|e| StoreError::Write {
                path: self.name.clone(),
                reason: format!("cannot write plugin copy {hash} to a local file: {e}"),
            })?;
            written += bytes.len() as i64;
        }
        if written != size {
            return Err(self.corrupt(format!(
                "plugin copy {hash}: {written} bytes stored, {size} recorded"
            )));
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Deletes the copies whose hash is not in `keep`; returns how many went.
    pub async fn prune_plugins(&self, keep: &[String]) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM plugin_copies WHERE NOT (hash = ANY($1::text[]))",
                &[&keep],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }
}
