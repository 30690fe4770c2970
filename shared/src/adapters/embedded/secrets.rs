//! An encrypted local secrets file.
//!
//! File layout: the magic `MLCSEC1\n`, a random 24-byte nonce (new on every write), then the
//! XChaCha20-Poly1305 ciphertext of the whole map as JSON (the magic is the associated data):
//! `{"next_version": n, "secrets": {name: {"value": …, "version": v}}}`. A file written before
//! versions existed holds a plain name → value map; it is read with version 0 everywhere and
//! rewritten in the new form by the next write. A wrong key or a changed byte fails
//! authentication and is refused.
//!
//! Writes are atomic (temporary file, fsync, rename) and read-modify-write cycles hold an OS
//! lock (`flock`) on a sidecar file `<file>.lock`, so two `mlc` processes sharing the file never
//! lose each other's writes and a compare-and-set ([`Secrets::put_if`]) is sound across
//! processes. The sidecar, not the secrets file, is locked because each write renames a new
//! file over the old one: a lock on the old inode would not exclude a writer that opened the
//! new one. Readers take no lock: a rename is atomic, they see the old map or the new one.
//!
//! Every write takes its version from the file-wide `next_version`, which only grows, so a
//! secret that is removed and created again never repeats a version a reader may still hold.
//! Values never appear in `Debug`, errors or logs; the key never appears anywhere.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use serde::{Deserialize, Serialize};

use crate::ports::{PutOutcome, SecretError, SecretString, SecretVersion, Secrets};

const MAGIC: &[u8] = b"MLCSEC1\n";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The environment variable holding the key (64 hex characters or base64 of 32 bytes).
pub const SECRET_KEY_ENV: &str = "MLC_SECRET_KEY";
/// The environment variable naming a file that holds the key (same encodings).
pub const SECRET_KEY_FILE_ENV: &str = "MLC_SECRET_KEY_FILE";

fn backend(msg: impl Into<String>) -> SecretError {
    SecretError::Backend(msg.into())
}

/// The 32-byte key of a secrets file. Never shown by `Debug`; zeroed when dropped.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference to a byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Parses 64 hex characters or base64 (standard or URL-safe, padded or not) of 32 bytes.
    /// Surrounding whitespace is ignored. The error never repeats the input.
    pub fn parse(encoded: &str) -> Result<Self, SecretError> {
        let s = encoded.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).ok()
        } else {
            use base64::engine::general_purpose::{
                STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
            };
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(s).ok())
        };
        let bytes = bytes.ok_or_else(|| {
            backend("the secrets key is neither 64 hex characters nor base64 of 32 bytes")
        })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            backend(format!(
                "the secrets key must be 32 bytes, this one decodes to {}",
                b.len()
            ))
        })?;
        Ok(Self(arr))
    }

    /// Reads a key file (64 hex characters or base64).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = fs::read_to_string(path).map_err(|e| {
            backend(format!(
                "cannot read secrets key file {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|e| backend(format!("secrets key file {}: {e}", path.display())))
    }

    /// The key from `MLC_SECRET_KEY`, else from the file named by `MLC_SECRET_KEY_FILE`.
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, SecretError> {
        if let Some(v) = var(SECRET_KEY_ENV).filter(|v| !v.trim().is_empty()) {
            return Self::parse(&v).map_err(|e| backend(format!("{SECRET_KEY_ENV}: {e}")));
        }
        if let Some(p) = var(SECRET_KEY_FILE_ENV).filter(|v| !v.trim().is_empty()) {
            return Self::from_file(Path::new(p.trim()));
        }
        Err(backend(format!(
            "no key for the secrets file: set {SECRET_KEY_ENV} (64 hex characters or base64 of \
             32 bytes) or {SECRET_KEY_FILE_ENV} (the path of a file holding such a key)"
        )))
    }

    /// Writes a new random key (hex) to `path`, readable by its owner only (0600 on unix).
    /// Refuses to overwrite an existing file: losing a key loses every secret encrypted with it.
    pub fn generate_to_file(path: &Path) -> Result<Self, SecretError> {
        let key = Self::generate();
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let err = |e: std::io::Error| {
            backend(format!(
                "cannot write secrets key file {}: {e}",
                path.display()
            ))
        };
        let mut f = opts.open(path).map_err(err)?;
        let mut text = hex::encode(key.0);
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        Ok(key)
    }
}

/// The local secrets file: name → value, encrypted. Clones share the file and the key.
#[derive(Clone)]
pub struct SecretFile {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    key: SecretKey,
    /// Serialises read-modify-write within this process (the file lock does across processes).
    write_lock: Mutex<()>,
}

/// One stored secret. No `Debug`: it holds the value.
#[derive(Serialize, Deserialize)]
struct Entry {
    value: String,
    version: u64,
}

/// The decrypted contents of the file.
#[derive(Serialize, Deserialize, Default)]
struct Contents {
    /// The version the next write gets; only grows.
    next_version: u64,
    secrets: BTreeMap<String, Entry>,
}

impl Contents {
    /// Stores `value` under `name` with a fresh version; returns it.
    fn insert(&mut self, name: &str, value: &str) -> u64 {
        self.next_version = self.next_version.max(1);
        let version = self.next_version;
        self.next_version += 1;
        self.secrets.insert(
            name.to_string(),
            Entry {
                value: value.to_string(),
                version,
            },
        );
        version
    }
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SecretFile {
    /// Opens the file at `path` (it need not exist yet; the first `set` creates it). An existing
    /// file is decrypted once here, so a wrong key is reported at once.
    pub fn open(path: impl AsRef<Path>, key: SecretKey) -> Result<Self, SecretError> {
        let file = Self {
            inner: Arc::new(Inner {
                path: path.as_ref().to_path_buf(),
                key,
                write_lock: Mutex::new(()),
            }),
        };
        file.load()?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Adds or replaces a secret (unconditionally; see [`SecretFile::set_if`] for a
    /// compare-and-set).
    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        if name.is_empty() {
            return Err(backend("a secret needs a name"));
        }
        self.update(|contents| {
            contents.insert(name, value);
            Ok(true)
        })
        .map(|_| ())
    }

    /// Removes a secret; false if there was none by that name.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        self.update(|contents| Ok(contents.secrets.remove(name).is_some()))
    }

    /// The names of the stored secrets (never their values), sorted.
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        Ok(self.load()?.secrets.into_keys().collect())
    }

    /// One secret, read from the file now (blocking).
    pub fn read(&self, name: &str) -> Result<SecretString, SecretError> {
        self.read_versioned(name).map(|(value, _)| value)
    }

    /// One secret and its version, read from the file now (blocking).
    pub fn read_versioned(&self, name: &str) -> Result<(SecretString, SecretVersion), SecretError> {
        self.load()?
            .secrets
            .remove(name)
            .map(|e| (SecretString::new(e.value), version_of(e.version)))
            .ok_or_else(|| SecretError::NotFound(name.to_string()))
    }

    /// Compare-and-set (blocking): stores `value` only if `name` is at `expected` (`None`: only
    /// if it does not exist). Holds the file lock from the read to the rename.
    pub fn set_if(
        &self,
        name: &str,
        expected: Option<&SecretVersion>,
        value: &str,
    ) -> Result<PutOutcome, SecretError> {
        if name.is_empty() {
            return Err(backend("a secret needs a name"));
        }
        let mut outcome = PutOutcome::Conflict;
        self.update(|contents| {
            let current = contents.secrets.get(name).map(|e| version_of(e.version));
            if current.as_ref() != expected {
                return Ok(false);
            }
            outcome = PutOutcome::Written(version_of(contents.insert(name, value)));
            Ok(true)
        })?;
        Ok(outcome)
    }

    /// Read-modify-write under the process mutex and the file lock; `change` says whether it
    /// changed anything (nothing is written if not) and its answer is returned.
    fn update(
        &self,
        change: impl FnOnce(&mut Contents) -> Result<bool, SecretError>,
    ) -> Result<bool, SecretError> {
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let _file_lock = self.lock_file()?;
        let mut contents = self.load()?;
        let changed = change(&mut contents)?;
        if changed {
            self.save(&contents)?;
        }
        Ok(changed)
    }

    /// An exclusive OS lock on `<file>.lock`, released when the returned handle drops (or the
    /// process dies: a crashed writer never leaves the file locked).
    fn lock_file(&self) -> Result<fs::File, SecretError> {
        let mut lock_path = self.inner.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let err = |e: std::io::Error| {
            backend(format!(
                "cannot lock secrets file {} (through {}): {e}",
                self.inner.path.display(),
                lock_path.display()
            ))
        };
        let file = opts.open(&lock_path).map_err(err)?;
        file.lock().map_err(err)?;
        Ok(file)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.inner.key.0))
    }

    fn load(&self) -> Result<Contents, SecretError> {
        let path = &self.inner.path;
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => {
                return Err(backend(format!(
                    "cannot read secrets file {}: {e}",
                    path.display()
                )));
            }
        };
        if bytes.len() < MAGIC.len() + NONCE_LEN + TAG_LEN || !bytes.starts_with(MAGIC) {
            return Err(backend(format!(
                "{} is not an mlc secrets file (bad header)",
                path.display()
            )));
        }
        let (nonce, ciphertext) = bytes[MAGIC.len()..].split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: MAGIC,
                },
            )
            .map_err(|_| {
                backend(format!(
                    "cannot decrypt secrets file {}: wrong key or the file was altered",
                    path.display()
                ))
            })?;
        // The error of a failed parse could quote the plaintext; do not pass it on.
        // The current form, else the plain map of files written before versions existed. Read
        // through `Value` rather than an untagged enum: with serde_json's `arbitrary_precision`
        // a number buffered by an untagged enum no longer reads as a u64.
        let not_a_map = || {
            backend(format!(
                "secrets file {} decrypts but does not hold a name → value map",
                path.display()
            ))
        };
        let json: serde_json::Value = serde_json::from_slice(&plain).map_err(|_| not_a_map())?;
        if json.get("secrets").is_some_and(|s| s.is_object()) {
            return serde_json::from_value(json).map_err(|_| not_a_map());
        }
        let map: BTreeMap<String, String> =
            serde_json::from_value(json).map_err(|_| not_a_map())?;
        Ok(Contents {
            next_version: 1,
            secrets: map
                .into_iter()
                .map(|(name, value)| (name, Entry { value, version: 0 }))
                .collect(),
        })
    }

    fn save(&self, contents: &Contents) -> Result<(), SecretError> {
        let plain = serde_json::to_vec(contents)
            .map_err(|_| backend("cannot serialise the secrets (internal error)"))?;
        self.write_plain(&plain)
    }

    /// Encrypts `plain` and writes it atomically.
    fn write_plain(&self, plain: &[u8]) -> Result<(), SecretError> {
        let path = &self.inner.path;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: MAGIC,
                },
            )
            .map_err(|_| backend("cannot encrypt the secrets (internal error)"))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        write_atomically(path, &bytes)
            .map_err(|e| backend(format!("cannot write secrets file {}: {e}", path.display())))
    }
}

/// Writes `bytes` to a temporary file next to `path` (0600 on unix), fsyncs it, renames it over
/// `path` and fsyncs the directory, so a crash leaves the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn version_of(counter: u64) -> SecretVersion {
    SecretVersion::new(counter.to_string())
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SecretError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| backend(format!("secrets task failed: {e}")))?
}

impl Secrets for SecretFile {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let (file, name) = (self.clone(), name.to_string());
        blocking(move || file.read(&name)).await
    }

    async fn get_versioned(
        &self,
        name: &str,
    ) -> Result<(SecretString, SecretVersion), SecretError> {
        let (file, name) = (self.clone(), name.to_string());
        blocking(move || file.read_versioned(&name)).await
    }

    async fn put_if(
        &self,
        name: &str,
        expected: Option<&SecretVersion>,
        value: &SecretString,
    ) -> Result<PutOutcome, SecretError> {
        let (file, name) = (self.clone(), name.to_string());
        let (expected, value) = (expected.cloned(), value.clone());
        blocking(move || file.set_if(&name, expected.as_ref(), value.expose())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "s3cr3t-client-secret-value";

    fn setup() -> (tempfile::TempDir, PathBuf, SecretKey) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.enc");
        (dir, path, SecretKey::generate())
    }

    #[tokio::test]
    async fn secret_file_round_trip() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key.clone()).unwrap();
        f.set("bc.client_secret", VALUE).unwrap();
        f.set("coupa.api_key", "k").unwrap();
        let reopened = SecretFile::open(&path, key).unwrap();
        assert_eq!(
            reopened.get("bc.client_secret").await.unwrap().expose(),
            VALUE
        );
        assert_eq!(
            reopened.names().unwrap(),
            ["bc.client_secret", "coupa.api_key"]
        );
        assert!(reopened.remove("coupa.api_key").unwrap());
        assert!(!reopened.remove("coupa.api_key").unwrap());
        assert!(matches!(
            f.get("coupa.api_key").await,
            Err(SecretError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn wrong_key_is_refused() {
        let (_d, path, key) = setup();
        SecretFile::open(&path, key)
            .unwrap()
            .set("a", VALUE)
            .unwrap();
        let err = SecretFile::open(&path, SecretKey::generate()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("wrong key or the file was altered"), "{msg}");
        assert!(!msg.contains(VALUE));
    }

    #[tokio::test]
    async fn tampered_file_is_refused() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key.clone()).unwrap();
        f.set("a", VALUE).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let err = f.get("a").await.unwrap_err();
        assert!(err.to_string().contains("cannot decrypt"), "{err}");
        fs::write(&path, b"not a secrets file at all, but long enough to pass").unwrap();
        assert!(SecretFile::open(&path, key).is_err());
    }

    #[test]
    fn file_bytes_do_not_contain_the_plaintext() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key).unwrap();
        f.set("bc.client_secret", VALUE).unwrap();
        let first = fs::read(&path).unwrap();
        assert!(first.starts_with(MAGIC));
        let hay = String::from_utf8_lossy(&first);
        assert!(!hay.contains(VALUE));
        assert!(!hay.contains("bc.client_secret"));
        // A fresh nonce on every write.
        f.set("bc.client_secret", VALUE).unwrap();
        assert_ne!(fs::read(&path).unwrap(), first);
    }

    #[tokio::test]
    async fn put_if_writes_only_at_the_expected_version() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key).unwrap();
        let v1 = match f.set_if("concur.token", None, "rt-1").unwrap() {
            PutOutcome::Written(v) => v,
            other => panic!("{other:?}"),
        };
        // Create-only: it exists now.
        assert_eq!(
            f.set_if("concur.token", None, "rt-x").unwrap(),
            PutOutcome::Conflict
        );
        let (value, seen) = f.get_versioned("concur.token").await.unwrap();
        assert_eq!((value.expose(), &seen), ("rt-1", &v1));
        let v2 = match Secrets::put_if(&f, "concur.token", Some(&v1), &SecretString::new("rt-2"))
            .await
            .unwrap()
        {
            PutOutcome::Written(v) => v,
            other => panic!("{other:?}"),
        };
        assert_ne!(v1, v2);
        // A writer still holding v1 lost the race: nothing is written.
        assert_eq!(
            f.set_if("concur.token", Some(&v1), "rt-stale").unwrap(),
            PutOutcome::Conflict
        );
        assert_eq!(f.read("concur.token").unwrap().expose(), "rt-2");
        // A plain `set` (an operator's `mlc secrets set`) is a write too.
        f.set("concur.token", "rt-operator").unwrap();
        assert_eq!(
            f.set_if("concur.token", Some(&v2), "rt-3").unwrap(),
            PutOutcome::Conflict
        );
        // Removed and created again: a version held from before does not match.
        let (_, v_now) = f.read_versioned("concur.token").unwrap();
        f.remove("concur.token").unwrap();
        f.set("concur.token", "rt-again").unwrap();
        assert_eq!(
            f.set_if("concur.token", Some(&v_now), "rt-4").unwrap(),
            PutOutcome::Conflict
        );
        assert!(matches!(
            f.set_if("missing", Some(&v1), "x").unwrap(),
            PutOutcome::Conflict
        ));
    }

    #[test]
    fn a_file_without_versions_is_read_and_upgraded() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key.clone()).unwrap();
        f.write_plain(br#"{"a":"old-a","b":"old-b"}"#).unwrap();
        let reopened = SecretFile::open(&path, key).unwrap();
        let (a, va) = reopened.read_versioned("a").unwrap();
        assert_eq!((a.expose(), va.as_str()), ("old-a", "0"));
        let PutOutcome::Written(v) = reopened.set_if("a", Some(&va), "new-a").unwrap() else {
            panic!("conflict on an untouched legacy entry");
        };
        assert_ne!(v, va);
        assert_eq!(reopened.read("b").unwrap().expose(), "old-b");
        assert_eq!(reopened.names().unwrap(), ["a", "b"]);
    }

    /// Adds one to the counter secret `n` with read + compare-and-set, retrying on conflict.
    fn increment(f: &SecretFile) -> u32 {
        let mut conflicts = 0;
        loop {
            let (value, version) = f.read_versioned("n").unwrap();
            let next = value.expose().parse::<u64>().unwrap() + 1;
            match f.set_if("n", Some(&version), &next.to_string()).unwrap() {
                PutOutcome::Written(_) => return conflicts,
                PutOutcome::Conflict => conflicts += 1,
            }
        }
    }

    #[test]
    fn concurrent_writers_with_their_own_handles_lose_no_increment() {
        // Separate `SecretFile`s share no mutex: only the file lock keeps them apart, as it
        // does two processes.
        let (_d, path, key) = setup();
        SecretFile::open(&path, key.clone())
            .unwrap()
            .set("n", "0")
            .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let f = SecretFile::open(&path, key.clone()).unwrap();
                std::thread::spawn(move || (0..25).map(|_| increment(&f)).sum::<u32>())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let f = SecretFile::open(&path, key).unwrap();
        assert_eq!(f.read("n").unwrap().expose(), "100");
    }

    /// The child half of the next test: run by the test binary itself in another process.
    #[test]
    fn child_process_increments() {
        let (Ok(path), Ok(key)) = (
            std::env::var("MLC_TEST_SECRETS_PATH"),
            std::env::var("MLC_TEST_SECRETS_KEY"),
        ) else {
            return; // Not a child: nothing to do.
        };
        let f = SecretFile::open(&path, SecretKey::parse(&key).unwrap()).unwrap();
        for _ in 0..25 {
            increment(&f);
        }
    }

    #[test]
    fn writers_in_separate_processes_lose_no_increment() {
        let (_d, path, key) = setup();
        let f = SecretFile::open(&path, key.clone()).unwrap();
        f.set("n", "0").unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..3)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "adapters::embedded::secrets::tests::child_process_increments",
                        "--test-threads=1",
                        "--quiet",
                    ])
                    .env("MLC_TEST_SECRETS_PATH", &path)
                    .env("MLC_TEST_SECRETS_KEY", hex::encode(key.0))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        assert_eq!(f.read("n").unwrap().expose(), "75");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let f = SecretFile::open("/nonexistent/secrets.enc", key.clone()).unwrap();
        let shown = format!("{key:?} {f:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.to_lowercase().contains("171"), "{shown}");
    }

    #[test]
    fn key_parses_hex_and_base64() {
        let bytes = [7u8; 32];
        let hex_key = SecretKey::parse(&hex::encode(bytes)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let b64_key = SecretKey::parse(&format!("{b64}\n")).unwrap();
        assert_eq!(hex_key.0, bytes);
        assert_eq!(b64_key.0, bytes);
        assert!(SecretKey::parse("too short").is_err());
        assert!(SecretKey::parse(&hex::encode([1u8; 16])).is_err());
    }

    #[test]
    fn missing_key_error_names_both_variables() {
        let err = SecretKey::from_vars(|_| None).unwrap_err().to_string();
        assert!(
            err.contains(SECRET_KEY_ENV) && err.contains(SECRET_KEY_FILE_ENV),
            "{err}"
        );
    }

    #[test]
    fn key_from_the_key_file_variable() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("key");
        let generated = SecretKey::generate_to_file(&key_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            SecretKey::generate_to_file(&key_path).is_err(),
            "no overwrite"
        );
        let p = key_path.to_string_lossy().into_owned();
        let loaded =
            SecretKey::from_vars(|name| (name == SECRET_KEY_FILE_ENV).then(|| p.clone())).unwrap();
        assert_eq!(loaded.0, generated.0);
    }
}
