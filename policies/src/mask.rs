//! The `hash` column mask: a keyed hash, so a masked value cannot be guessed back.
//!
//! A national id has ten digits: an unkeyed SHA-256 of it is reversed offline by
//! hashing all ten billion candidates. The mask is therefore HMAC-SHA-256 under a
//! secret only the server holds (kept in its data folder), shown as 64 hex digits.
//! Equal values still mask equally, so analysts can count and join on the masked
//! column; without the key nobody can tell which id a mask stands for.
//!
//! The function is never registered by name: users cannot call it to mask guesses
//! of their own. Enforcement builds the call into the plan directly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// A server's secret for the `hash` mask.
#[derive(Clone)]
pub struct MaskKey([u8; 32]);

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskKey(…)")
    }
}

impl MaskKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        MaskKey(bytes)
    }

    /// A fresh random key.
    pub fn random() -> Self {
        MaskKey(rand::random())
    }

    /// The key in `path`, made (readable by its owner only) when there is none.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => Ok(MaskKey(key)),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: the mask key must be 32 bytes, not {}; restore it from a backup (a new key changes every hash mask)",
                        path.display(),
                        bytes.len()
                    ),
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MaskKey::random();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("tmp");
                {
                    use std::io::Write;
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        options.mode(0o600);
                    }
                    let mut file = options.open(&tmp)?;
                    file.write_all(&key.0)?;
                    file.sync_all()?;
                }
                std::fs::rename(&tmp, path)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// The mask of `text` (an expression of text type) under this key.
    pub fn mask(&self, text: Expr) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(self.udf(), vec![text]))
    }

    fn udf(&self) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(KeyedHash {
            key: self.0,
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }))
    }
}

/// HMAC-SHA-256 of text under the key, in hex.
#[derive(Debug)]
struct KeyedHash {
    key: [u8; 32],
    signature: Signature,
}

impl PartialEq for KeyedHash {
    fn eq(&self, other: &Self) -> bool {
        // Constant time is not needed: keys are never compared with user input.
        self.key == other.key
    }
}

impl Eq for KeyedHash {}

impl std::hash::Hash for KeyedHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "amar_mask_hash".hash(state);
    }
}

impl KeyedHash {
    fn one(&self, key: &ring::hmac::Key, value: &str) -> String {
        let tag = ring::hmac::sign(key, value.as_bytes());
        let mut out = String::with_capacity(64);
        for b in tag.as_ref() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl ScalarUDFImpl for KeyedHash {
    fn name(&self) -> &str {
        "amar_mask_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key);
        match args.args.first() {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(v))) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(v.as_deref().map(|v| self.one(&key, v))),
            )),
            Some(ColumnarValue::Array(array)) if array.data_type() == &DataType::Utf8 => {
                let text = array.as_string::<i32>();
                let mut out = StringBuilder::with_capacity(text.len(), text.len() * 64);
                for i in 0..text.len() {
                    if text.is_null(i) {
                        out.append_null();
                    } else {
                        out.append_value(self.one(&key, text.value(i)));
                    }
                }
                Ok(ColumnarValue::Array(Arc::new(out.finish())))
            }
            _ => exec_err!("amar_mask_hash takes one text argument"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_keyed_stable_and_not_plain_sha256() {
        let a = KeyedHash {
            key: [1; 32],
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        };
        let b = KeyedHash {
            key: [2; 32],
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        };
        let ka = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &a.key);
        let kb = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &b.key);
        let id = "0012345678";
        assert_eq!(
            a.one(&ka, id),
            a.one(&ka, id),
            "the same value masks the same"
        );
        assert_ne!(a.one(&ka, id), b.one(&kb, id), "another key, another mask");
        let plain = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        let plain: String = plain.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_ne!(
            a.one(&ka, id),
            plain,
            "not the unkeyed hash anyone can compute"
        );
        assert_eq!(a.one(&ka, id).len(), 64);
    }

    #[test]
    fn the_key_survives_a_restart_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("mask.key");
        let first = MaskKey::load_or_create(&path).unwrap();
        let again = MaskKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, again.0);
        std::fs::write(&path, b"short").unwrap();
        let e = MaskKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
    }
}
