//! The build cache, image rows and which workspace holds which image reference.

use crate::{ClusterStore, ImageRow};

/// A build step's image is recorded, replaced, listed oldest first and forgotten.
pub async fn builds_round_trip(s: &dyn ClusterStore) {
    assert_eq!(s.get_build("aa").await.unwrap(), None);
    s.put_build("aa", "cove-build/aa:1").await.unwrap();
    s.put_build("aa", "cove-build/aa:2").await.unwrap();
    let row = s.get_build("aa").await.unwrap().unwrap();
    assert_eq!(
        (row.hash.as_str(), row.image_reference.as_str()),
        ("aa", "cove-build/aa:2")
    );
    s.put_build("bb", "cove-build/bb:1").await.unwrap();
    let hashes: Vec<String> = s
        .list_builds()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.hash)
        .collect();
    assert_eq!(hashes.len(), 2);
    assert!(hashes.contains(&"aa".to_string()) && hashes.contains(&"bb".to_string()));
    let builds = s.list_builds().await.unwrap();
    assert!(builds
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at));
    assert!(s.delete_build("aa").await.unwrap());
    assert!(!s.delete_build("aa").await.unwrap());
    assert_eq!(s.get_build("aa").await.unwrap(), None);
}

fn image(reference: &str, digest: &str) -> ImageRow {
    ImageRow {
        reference: reference.into(),
        digest: digest.into(),
        config_digest: "sha256:c0".into(),
        manifest_json: "{\"schemaVersion\":2}".into(),
        config_json: "{}".into(),
        layers_json: "[]".into(),
        size: 42,
        created_at: 7,
    }
}

/// An image row comes back whole, is replaced by reference, listed by reference and removed.
pub async fn images_round_trip(s: &dyn ClusterStore) {
    let b = image("docker.io/library/b:1", "sha256:b1");
    s.put_image(&b).await.unwrap();
    assert_eq!(s.get_image(&b.reference).await.unwrap(), Some(b.clone()));
    let b2 = image("docker.io/library/b:1", "sha256:b2");
    s.put_image(&b2).await.unwrap();
    assert_eq!(s.get_image(&b.reference).await.unwrap(), Some(b2.clone()));
    let a = image("docker.io/library/a:1", "sha256:a1");
    s.put_image(&a).await.unwrap();
    assert_eq!(s.list_images().await.unwrap(), vec![a.clone(), b2]);
    assert!(s.delete_image(&b.reference).await.unwrap());
    assert!(!s.delete_image(&b.reference).await.unwrap());
    assert_eq!(s.get_image(&b.reference).await.unwrap(), None);
    assert_eq!(s.list_images().await.unwrap(), vec![a]);
}

/// A workspace sees only the references it holds; holding one twice is holding it once.
pub async fn image_refs_per_workspace(s: &dyn ClusterStore) {
    s.add_image_ref("a", "r:1").await.unwrap();
    s.add_image_ref("a", "r:1").await.unwrap();
    s.add_image_ref("a", "r:2").await.unwrap();
    s.add_image_ref("b", "r:1").await.unwrap();
    assert!(s.has_image_ref("a", "r:1").await.unwrap());
    assert!(!s.has_image_ref("c", "r:1").await.unwrap());
    assert!(!s.has_image_ref("b", "r:2").await.unwrap());
    assert_eq!(s.image_ref_holders("r:1").await.unwrap(), 2);
    assert_eq!(s.image_ref_holders("r:3").await.unwrap(), 0);
    let a: Vec<String> = {
        let mut v: Vec<String> = s.image_refs_of("a").await.unwrap().into_iter().collect();
        v.sort();
        v
    };
    assert_eq!(a, ["r:1", "r:2"]);
    s.remove_image_ref(Some("a"), "r:1").await.unwrap();
    assert!(!s.has_image_ref("a", "r:1").await.unwrap());
    assert!(s.has_image_ref("b", "r:1").await.unwrap());
    s.add_image_ref("c", "r:2").await.unwrap();
    s.remove_image_ref(None, "r:2").await.unwrap();
    assert_eq!(s.image_ref_holders("r:2").await.unwrap(), 0);
    assert!(s.image_refs_of("a").await.unwrap().is_empty());
    assert_eq!(s.image_refs_of("b").await.unwrap().len(), 1);
}
