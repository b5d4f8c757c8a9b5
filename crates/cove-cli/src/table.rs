//! Tables in the guide's look: no borders, a `─` line under the header, then `N items`.

use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};
use cove_types::{Container, ContainerStatus, ImageInfo};

use crate::humanize;

/// Borderless, with only a horizontal line below the header.
const MINIMAL: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(MINIMAL)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header(header.to_vec());
    table
}

/// The table and its `N items` footer, as printed.
pub(crate) fn render(table: &Table, count: usize) -> String {
    let mut out = String::from("\n");
    if count > 0 {
        for line in table.lines() {
            out.push(' ');
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("  {count} items\n"));
    out
}

/// The Status column: `EXITED (3)` for an exit with a code, else the status itself.
pub fn status_label(c: &Container) -> String {
    match (c.status, c.exit_code) {
        (ContainerStatus::Exited | ContainerStatus::Failed, Some(code)) => {
            format!("{} ({code})", c.status.as_str())
        }
        (status, _) => status.as_str().to_string(),
    }
}

/// `cove container list`.
pub fn containers(list: &[Container], now_ms: i64) -> String {
    let mut table = new_table(&[
        "ID",
        "Status",
        "Stub ID",
        "Deployment ID",
        "Scheduled At",
        "Uptime",
    ]);
    for c in list {
        table.add_row(vec![
            c.id.clone(),
            status_label(c),
            c.stub_id.clone(),
            c.deployment_id.clone().unwrap_or_default(),
            humanize::ago(c.scheduled_at, now_ms),
            humanize::uptime(c.started_at, c.ended_at, now_ms),
        ]);
    }
    render(&table, list.len())
}

/// `cove image list`.
pub fn images(list: &[ImageInfo], now_ms: i64) -> String {
    let mut table = new_table(&["REFERENCE", "DIGEST", "SIZE", "LAYERS", "CREATED"]);
    for i in list {
        table.add_row(vec![
            i.reference.clone(),
            humanize::short_digest(&i.digest).to_string(),
            humanize::size(i.size),
            i.layers.to_string(),
            humanize::ago(i.created_at, now_ms),
        ]);
    }
    render(&table, list.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const NOW: i64 = 1_700_000_000_000;

    pub(crate) fn sample_container(status: ContainerStatus, exit_code: Option<i32>) -> Container {
        Container {
            id: "pod-58a38dba-8b7b-4db3-b002-436c6d9b4858-a613eecd".into(),
            status,
            stub_id: "58a38dba-8b7b-4db3-b002-436c6d9b4858".into(),
            deployment_id: None,
            name: None,
            image: "busybox:latest".into(),
            scheduled_at: NOW - 5_000,
            started_at: Some(NOW - 4_000),
            ended_at: None,
            exit_code,
            reason: None,
            address: Some("10.88.0.2".into()),
            cpu_millis: 1000,
            memory_mib: 128,
            keep_warm_seconds: 600,
            urls: vec![],
            isolation: cove_types::Isolation::Runc,
            block_network: false,
            allow_list: vec![],
            workspace: "default".into(),
            authorized: false,
        }
    }

    #[test]
    fn container_table_has_the_guides_columns() {
        let out = containers(&[sample_container(ContainerStatus::Running, None)], NOW);
        print!("{out}");
        let lines: Vec<&str> = out.lines().collect();
        let header = lines[1];
        let mut last = 0;
        for name in [
            "ID",
            "Status",
            "Stub ID",
            "Deployment ID",
            "Scheduled At",
            "Uptime",
        ] {
            let at = header
                .find(name)
                .unwrap_or_else(|| panic!("{name} missing in {header:?}"));
            assert!(at >= last, "{name} out of order");
            last = at;
        }
        assert!(lines[2].trim().chars().all(|c| c == '─'), "{:?}", lines[2]);
        assert!(lines[3].contains("pod-58a38dba-8b7b-4db3-b002-436c6d9b4858-a613eecd   RUNNING"));
        assert!(lines[3].contains("5 seconds ago"));
        assert!(lines[3].trim_end().ends_with("4 seconds"));
        assert_eq!(lines.last().copied(), Some("  1 items"));
    }

    #[test]
    fn statuses_show_exit_codes() {
        let exited = sample_container(ContainerStatus::Exited, Some(3));
        assert_eq!(status_label(&exited), "EXITED (3)");
        let oom = sample_container(ContainerStatus::OomKilled, Some(137));
        assert_eq!(status_label(&oom), "OOM_KILLED");
        let stopped = sample_container(ContainerStatus::Stopped, None);
        assert_eq!(status_label(&stopped), "STOPPED");
        let mut pending = sample_container(ContainerStatus::Pending, None);
        pending.started_at = None;
        let out = containers(&[exited, pending], NOW);
        assert!(out.contains("EXITED (3)"));
        assert!(out.ends_with("  2 items\n"));
    }

    #[test]
    fn empty_tables_say_zero_items() {
        assert_eq!(containers(&[], NOW), "\n  0 items\n");
    }

    #[test]
    fn image_table() {
        let img = ImageInfo {
            reference: "127.0.0.1:5000/busybox:latest".into(),
            digest: "sha256:abcdef0123456789abcdef".into(),
            config_digest: "sha256:00".into(),
            size: 2_100_000,
            layers: 1,
            created_at: NOW - 180_000,
        };
        let out = images(&[img], NOW);
        print!("{out}");
        for needle in [
            "REFERENCE",
            "DIGEST",
            "SIZE",
            "LAYERS",
            "CREATED",
            "abcdef012345 ",
            "2.1 MB",
            "3 minutes ago",
        ] {
            assert!(out.contains(needle), "{needle} missing");
        }
        assert!(out.ends_with("  1 items\n"));
    }
}
