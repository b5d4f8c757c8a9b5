//! Container images for Cove: pull from OCI registries, import archives, unpack
//! layers safely, and mount overlay root filesystems.
//!
//! * [`reference`] — reference parsing and the canonical form (DB key).
//! * [`pull`] — the registry client (oci-client) and the pull flow.
//! * `blobs` — content-addressed blob store with verified writes.
//! * `unpack`, `fsat`, `whiteout` — the hostile-layer boundary: our own tar
//!   entry loop over symlink-proof `*at` file operations.
//! * `overlay` — mounting/unmounting container root filesystems; `disk` — the
//!   per-pod disk limit (upper dir on a sized loop-mounted ext4); `disk_pool` — disks of
//!   the default size formatted ahead; `loop_device` — attaching a loop device in process.
//! * `import` — OCI layouts, OCI archives and docker-archive tars.
//! * `build`, `layer_from_dir` — images made by builds: a container's
//!   overlay upper dir turned back into an OCI layer on top of its image.
//! * `store`, `gc` — [`ImageStore`]: the `images` table; removal and GC.
//! * `sync_files` — synced files stored one by one by digest, and the build
//!   contexts assembled from them.
//!
//! On disk (`<data_dir>/images`): `blobs/sha256/<hex>`, `l/<12 hex of diff_id>`
//! (unpacked layers; short for the overlay option limit), `tmp/` (in-flight
//! downloads/unpacks, wiped on open), `empty/` (the lower of zero-layer images),
//! `files/sha256/<hex>` (synced files). `<data_dir>/disk-pool/<n>.img`: formatted pod
//! disks waiting to be taken.

mod blobs;
mod build;
mod config;
mod disk;
mod disk_pool;
mod error;
mod fsat;
mod gc;
mod import;
mod layer_from_dir;
mod loop_device;
mod manifest;
mod overlay;
pub mod pull;
pub mod reference;
mod store;
mod sync_files;
mod unpack;
mod wait;
mod whiteout;

pub use build::{build_step_keys, LayerCommit};
pub use config::ImageConfig;
pub use error::ImageError;
pub use import::PreparedImport;
pub use store::{Image, ImageStore, ImageStoreOptions};
pub use sync_files::SyncFilesError;
pub(crate) use wait::wait;

/// Unpacks an uncompressed layer tar into `dest` with every safety check the
/// pull path uses. Exposed for tests and tools.
pub fn unpack_layer_tar(
    reader: impl std::io::Read,
    dest: &std::path::Path,
) -> Result<(), ImageError> {
    unpack::unpack_tar(reader, dest)
}
