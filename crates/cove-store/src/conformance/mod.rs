//! The contract of [`ClusterStore`], as checks any backend must pass (feature `conformance`).
//!
//! Each check is an `async fn(&dyn ClusterStore)` that expects an empty store and panics on a
//! broken contract, so a backend can run them one by one. [`conformance_tests!`] makes one
//! test per check:
//!
//! ```ignore
//! cove_store::conformance_tests!(async {
//!     SqliteStore::open_in_memory().map(|s| (Arc::new(s) as StoreHandle, ()))
//! });
//! ```
//!
//! The block, run once per test, makes a fresh empty store: a `Result<(StoreHandle, G), E>`
//! (`E: Debug`), where `G` is dropped after the store when the check ends (a temp dir, a
//! key prefix to delete). The tests run on a multi-thread runtime: the concurrency checks
//! race real threads against one store. The calling crate needs `tokio` (features `macros`,
//! `rt-multi-thread`) among its dev-dependencies.
//!
//! [`ClusterStore`]: crate::ClusterStore
//! [`conformance_tests!`]: crate::conformance_tests

pub mod admission;
pub mod deployments;
pub mod images;
pub mod pods;
pub mod workspaces;

use crate::{Admission, ContainerRow, DeploymentRow, Limits, PodRow};

/// Every check, by module path; `$make` builds a fresh store for each.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            pods::pod_and_container_round_trip,
            pods::a_taken_pod_id_records_nothing,
            pods::container_status_transitions,
            pods::containers_are_listed_in_order,
            pods::another_container_of_a_pod,
            pods::delete_pod_removes_its_containers,
            pods::a_pods_spec_can_be_replaced,
            pods::missing_rows_are_none,
            deployments::deployment_round_trip,
            deployments::a_taken_name_or_url_key_records_nothing,
            deployments::version_and_status_change,
            deployments::versions_are_the_pods_that_ran_and_the_current_one,
            deployments::delete_keeps_the_versions_pods,
            images::builds_round_trip,
            images::images_round_trip,
            images::image_refs_per_workspace,
            workspaces::tokens_round_trip,
            workspaces::a_token_sets_its_workspaces_limits,
            workspaces::limits_are_set_field_by_field,
            workspaces::workspaces_are_listed,
            admission::usage_counts_live_containers,
            admission::admission_refuses_at_each_limit_and_records_nothing,
            admission::admission_covers_every_insert,
            admission::the_shared_pool_is_capped,
            admission::concurrent_creates_pass_no_limit,
            admission::concurrent_wakes_pass_no_limit,
        );
    };
    (@each $make:expr; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, guard) = ($make).await.expect("a fresh store");
                let store: $crate::StoreHandle = store;
                $crate::conformance::$module::$check(&*store).await;
                drop(store);
                drop(guard);
            }
        )*
    };
}

/// A pod of `workspace` asking for `cpu` millicores, 128 MiB and `disk` MiB (if given).
pub fn pod(id: &str, workspace: &str, cpu: u64, disk: Option<u64>) -> PodRow {
    let disk = disk
        .map(|d| format!(",\"disk_mib\":{d}"))
        .unwrap_or_default();
    PodRow {
        id: id.into(),
        name: None,
        deployment_id: None,
        spec_json: format!("{{\"cpu_millis\":{cpu},\"memory_mib\":128{disk}}}"),
        created_at: 1,
        workspace: workspace.into(),
    }
}

/// A PENDING container `id` of pod `pod_id`, scheduled at `at`.
pub fn container(id: &str, pod_id: &str, at: i64) -> ContainerRow {
    ContainerRow {
        id: id.into(),
        pod_id: pod_id.into(),
        status: "PENDING".into(),
        image: "docker.io/library/alpine:latest".into(),
        address: None,
        shim_pid: None,
        exit_code: None,
        reason: None,
        scheduled_at: at,
        started_at: None,
        ended_at: None,
        last_active_at: None,
    }
}

/// An ACTIVE deployment `name` (id `d-<name>`) of workspace `ws`, at version 1 on `pod_id`.
pub fn deployment(name: &str, ws: &str, pod_id: &str) -> DeploymentRow {
    DeploymentRow {
        id: format!("d-{name}"),
        name: name.into(),
        url_key: format!("{name}-0123abcd"),
        version: 1,
        pod_id: Some(pod_id.into()),
        status: "ACTIVE".into(),
        created_at: 1,
        updated_at: 1,
        workspace: ws.into(),
    }
}

/// A container of `ws` asking for 500 millicores, 128 MiB and 64 MiB of disk.
pub fn admission(ws: &str, limits: Limits, shared_pods_max: Option<u64>) -> Admission {
    Admission {
        workspace: ws.into(),
        limits,
        cpu_millis: 500,
        memory_mib: 128,
        disk_mib: 64,
        default_disk_mib: 64,
        shared_pods_max,
    }
}

pub fn max_pods(n: u64) -> Limits {
    Limits {
        max_pods: Some(n),
        ..Default::default()
    }
}
