//! Reading a container's log file, once or following it while it runs.

use std::io::SeekFrom;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// The log of a container as a byte stream. With `follow`, the stream
    /// stays open and yields new output until the container has ended.
    pub async fn logs(
        &self,
        id: &str,
        follow: bool,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, LifecycleError> {
        if self.inner.store.get_container(id)?.is_none() {
            return Err(LifecycleError::ContainerNotFound(id.to_string()));
        }
        let path = self.container_dir(id).join("container.log");
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(LifecycleError::Io(format!("opening {}", path.display()), e)),
        };
        let this = self.clone();
        let id = id.to_string();
        Ok(futures::stream::unfold(
            (file, 0u64, this, id, false),
            move |(mut file, mut pos, this, id, mut last_round)| async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    if file.is_none() {
                        file = tokio::fs::File::open(this.container_dir(&id).join("container.log"))
                            .await
                            .ok();
                    }
                    if let Some(f) = file.as_mut() {
                        if let Err(e) = f.seek(SeekFrom::Start(pos)).await {
                            return Some((Err(e), (file, pos, this, id, true)));
                        }
                        match f.read(&mut buf).await {
                            Ok(0) => {}
                            Ok(n) => {
                                pos += n as u64;
                                buf.truncate(n);
                                return Some((
                                    Ok(Bytes::from(buf)),
                                    (file, pos, this, id, last_round),
                                ));
                            }
                            Err(e) => return Some((Err(e), (file, pos, this, id, true))),
                        }
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
