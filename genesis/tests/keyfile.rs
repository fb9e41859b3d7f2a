//! Key files: round trip, private permissions, no accidental overwrite, and
//! errors that name the file.

use std::fs;
use std::path::Path;

use crypto::Keypair;
use genesis::{KeyFileError, Overwrite, read_key_file, write_key_file};

/// Writes `text` as a key file only its owner may read, as a user would
/// after `chmod 600`, so the tests of its contents get past the mode check.
fn write_private(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn written(directory: &Path, seed: u8) -> std::path::PathBuf {
    let path = directory.join(format!("key-{seed}.json"));
    write_key_file(&path, &Keypair::from_seed([seed; 32]), Overwrite::Refuse).unwrap();
    path
}

#[test]
fn key_file_round_trips() {
    let directory = tempfile::tempdir().unwrap();
    let keypair = Keypair::generate();
    let path = directory.path().join("validator.key");
    write_key_file(&path, &keypair, Overwrite::Refuse).unwrap();
    let read = read_key_file(&path).unwrap();
    assert_eq!(read.seed(), keypair.seed());
    assert_eq!(read.public(), keypair.public());
}

#[test]
fn key_file_holds_the_documented_fields() {
    let directory = tempfile::tempdir().unwrap();
    let path = written(directory.path(), 1);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let keypair = Keypair::from_seed([1; 32]);
    assert_eq!(
        json,
        serde_json::json!({
            "public_key": keypair.public().to_hex(),
            "secret_key": hex::encode([1u8; 32]),
        })
    );
}

#[cfg(unix)]
#[test]
fn key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().unwrap();
    let path = written(directory.path(), 1);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
}

#[test]
fn existing_key_file_is_not_overwritten_unless_asked() {
    let directory = tempfile::tempdir().unwrap();
    let path = written(directory.path(), 1);
    let error = write_key_file(&path, &Keypair::from_seed([2; 32]), Overwrite::Refuse).unwrap_err();
    assert!(
        matches!(&error, KeyFileError::AlreadyExists { path: named } if *named == path),
        "{error}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(read_key_file(&path).unwrap().seed(), [1; 32]);
}

#[test]
fn replacing_a_key_file_writes_the_new_key_privately() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("node.key");
    fs::write(&path, "old, world-readable").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    write_key_file(&path, &Keypair::from_seed([2; 32]), Overwrite::Replace).unwrap();
    assert_eq!(read_key_file(&path).unwrap().seed(), [2; 32]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let leftovers: Vec<_> = fs::read_dir(directory.path()).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary file left behind: {leftovers:?}"
    );
}

#[test]
fn replace_also_creates_a_missing_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("fresh.key");
    write_key_file(&path, &Keypair::from_seed([3; 32]), Overwrite::Replace).unwrap();
    assert_eq!(read_key_file(&path).unwrap().seed(), [3; 32]);
}

#[test]
fn public_key_that_does_not_match_the_secret_is_detected() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mixed.key");
    let text = serde_json::json!({
        "public_key": Keypair::from_seed([2; 32]).public().to_hex(),
        "secret_key": hex::encode([1u8; 32]),
    });
    write_private(&path, &text.to_string());
    let error = read_key_file(&path).unwrap_err();
    let KeyFileError::PublicKeyMismatch {
        path: named,
        stored,
        derived,
    } = &error
    else {
        panic!("expected PublicKeyMismatch, got {error}");
    };
    assert_eq!(named, &path);
    assert_eq!(*stored, Keypair::from_seed([2; 32]).public());
    assert_eq!(*derived, Keypair::from_seed([1; 32]).public());
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn malformed_key_files_are_reported_with_their_path() {
    let directory = tempfile::tempdir().unwrap();
    let public = Keypair::from_seed([1; 32]).public().to_hex();
    let cases = [
        ("not json", "not json".to_owned(), "expected"),
        (
            "missing secret",
            format!(r#"{{ "public_key": "{public}" }}"#),
            "missing field `secret_key`",
        ),
        (
            "extra field",
            format!(
                r#"{{ "public_key": "{public}", "secret_key": "{}", "x": 1 }}"#,
                "11".repeat(32)
            ),
            "unknown field `x`",
        ),
        (
            "bad public hex",
            format!(
                r#"{{ "public_key": "zz", "secret_key": "{}" }}"#,
                "11".repeat(32)
            ),
            "public_key:",
        ),
        (
            "short secret",
            format!(r#"{{ "public_key": "{public}", "secret_key": "0badc0de" }}"#),
            "secret_key:",
        ),
    ];
    for (what, text, expected) in cases {
        let path = directory.path().join("broken.key");
        write_private(&path, &text);
        let error = read_key_file(&path).unwrap_err();
        assert!(
            matches!(&error, KeyFileError::Malformed { path: named, .. } if *named == path),
            "{what}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{what}: {message}"
        );
        assert!(message.contains(expected), "{what}: {message}");
    }
}

#[test]
fn malformed_secret_is_not_echoed_in_the_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("leaky.key");
    let public = Keypair::from_seed([1; 32]).public().to_hex();
    let almost_a_secret = format!("{}zz", "5e".repeat(31));
    write_private(
        &path,
        &format!(r#"{{ "public_key": "{public}", "secret_key": "{almost_a_secret}" }}"#),
    );
    let message = read_key_file(&path).unwrap_err().to_string();
    assert!(!message.contains("5e5e5e"), "{message}");
}

#[test]
fn missing_key_file_error_names_the_path() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("absent.key");
    let error = read_key_file(&path).unwrap_err();
    assert!(
        matches!(&error, KeyFileError::Read { path: named, .. } if *named == path),
        "{error}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_refused_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().unwrap();
    let path = written(directory.path(), 4);
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let error = read_key_file(&path).unwrap_err();
        assert!(
            matches!(&error, KeyFileError::TooOpen { path: named, mode: found } if *named == path && *found == mode),
            "mode {mode:o}: {error}"
        );
        let message = error.to_string();
        let fix = format!("chmod 600 {}", path.display());
        assert!(message.contains(&fix), "{message}");
        assert!(message.contains(&format!("mode 0{mode:o}")), "{message}");
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_only_its_owner_may_read_is_accepted() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().unwrap();
    let path = written(directory.path(), 5);
    for mode in [0o600, 0o400] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(
            read_key_file(&path).unwrap().seed(),
            [5; 32],
            "mode {mode:o}"
        );
    }
}
