//! An encrypted local secrets file.
//!
//! File layout: the magic `MLCSEC1\n`, a random 24-byte nonce (new on every write), then the
//! XChaCha20-Poly1305 ciphertext of the whole name → value map as JSON (the magic is the
//! associated data). A wrong key or a changed byte fails authentication and is refused.
//! Writes are atomic (temporary file, fsync, rename). Values never appear in `Debug`, errors or
//! logs; the key never appears anywhere.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::ports::{SecretError, SecretString, Secrets};

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
    /// Serialises read-modify-write within this process.
    write_lock: Mutex<()>,
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

    /// Adds or replaces a secret.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        if name.is_empty() {
            return Err(backend("a secret needs a name"));
        }
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut map = self.load()?;
        map.insert(name.to_string(), value.to_string());
        self.save(&map)
    }

    /// Removes a secret; false if there was none by that name.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut map = self.load()?;
        if map.remove(name).is_none() {
            return Ok(false);
        }
        self.save(&map)?;
        Ok(true)
    }

    /// The names of the stored secrets (never their values), sorted.
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        Ok(self.load()?.into_keys().collect())
    }

    /// One secret, read from the file now (blocking).
    pub fn read(&self, name: &str) -> Result<SecretString, SecretError> {
        self.load()?
            .remove(name)
            .map(SecretString::new)
            .ok_or_else(|| SecretError::NotFound(name.to_string()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.inner.key.0))
    }

    fn load(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let path = &self.inner.path;
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
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
        serde_json::from_slice(&plain).map_err(|_| {
            backend(format!(
                "secrets file {} decrypts but does not hold a name → value map",
                path.display()
            ))
        })
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let path = &self.inner.path;
        let plain = serde_json::to_vec(map)
            .map_err(|_| backend("cannot serialise the secrets (internal error)"))?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
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

impl Secrets for SecretFile {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let (file, name) = (self.clone(), name.to_string());
        tokio::task::spawn_blocking(move || file.read(&name))
            .await
            .map_err(|e| backend(format!("secrets task failed: {e}")))?
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
