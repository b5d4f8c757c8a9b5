//! Reading a container's log, once or following it while it runs. The log is
//! `container.log` and its rotations (`container.log.1`, …): they are read oldest
//! first, and following crosses rotations (see [`cove_runtime::LogReader`]).

use std::time::Duration;

use bytes::Bytes;
use cove_runtime::LogReader;
use futures::Stream;

use crate::{Lifecycle, LifecycleError};

/// Bytes per chunk of the stream.
const CHUNK: usize = 64 * 1024;

impl Lifecycle {
    /// The log of a container as a byte stream. With `follow`, the stream
    /// stays open and yields new output until the container has ended.
    pub async fn logs(
        &self,
        id: &str,
        follow: bool,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, LifecycleError> {
        if self.inner.store.get_container(id).await?.is_none() {
            return Err(LifecycleError::ContainerNotFound(id.to_string()));
        }
        let path = self.container_dir(id).join("container.log");
        // Without `follow`: what the log holds now, even if the container writes faster than
        // the client reads.
        let reader = if follow {
            LogReader::new(&path)
        } else {
            LogReader::to_now(&path)
        };
        let this = self.clone();
        let id = id.to_string();
        Ok(futures::stream::unfold(
            (Some(reader), this, id, false),
            move |(reader, this, id, mut last_round)| async move {
                let mut reader = reader?;
                loop {
                    let (back, read) = match read_chunk(reader).await {
                        Ok(r) => r,
                        Err(e) => return Some((Err(e), (None, this, id, true))),
                    };
                    reader = back;
                    match read {
                        Ok(Some(bytes)) => {
                            return Some((Ok(bytes), (Some(reader), this, id, last_round)))
                        }
                        Ok(None) => {}
                        Err(e) => return Some((Err(e), (None, this, id, true))),
                    }
                    // At the end of what is written so far.
                    if !follow || last_round {
                        return None;
                    }
                    if !this.live().contains_key(&id) {
                        // It ended: read once more for output written just before.
                        last_round = true;
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            },
        ))
    }
}

/// Reads the next chunk off the async runtime's threads; `None` when caught up.
async fn read_chunk(
    mut reader: LogReader,
) -> std::io::Result<(LogReader, std::io::Result<Option<Bytes>>)> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; CHUNK];
        let read = reader.read(&mut buf).map(|n| {
            buf.truncate(n);
            (n > 0).then(|| Bytes::from(buf))
        });
        (reader, read)
    })
    .await
    .map_err(std::io::Error::other)
}
