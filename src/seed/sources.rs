//! Images on local disk, as the seed file names them, read into what a push
//! sends: the blobs (config and layers) and the manifests, children before
//! the index that lists them.
//!
//! - `oci:DIR[:REF]`: an OCI image layout directory (OCI Image Layout
//!   Specification: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`);
//!   `REF` picks the manifest whose `org.opencontainers.image.ref.name`
//!   annotation it is, and may be left out when `index.json` lists one.
//! - `oci-archive:FILE[:REF]`: the same layout in a tar file.
//! - `docker-archive:FILE[:REF]`: `docker save` output. A modern archive
//!   (Docker 25 and later) is also an OCI layout and is read as one; an
//!   older one (`manifest.json` naming a config file and layer tars) becomes
//!   an OCI image manifest over the same config and layer bytes. `REF` picks
//!   an image by one of its `RepoTags`.
//!
//! Blob bytes are streamed from the file (a tar member is read in place),
//! never held whole in memory. Every blob's digest is checked by the blob
//! store as it is stored.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncSeekExt;

use crate::digest::{Digest, Hasher};
use crate::ecr::manifest;
use crate::store::blobs::ByteStream;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Index and manifest files are small; a bigger one is not what it claims.
const MAX_METADATA_FILE: u64 = 4 * 1024 * 1024;

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub kind: SourceKind,
    pub path: PathBuf,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Oci,
    OciArchive,
    DockerArchive,
}

impl ImageSource {
    /// Parses `KIND:PATH[:REF]`, the path relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<ImageSource, String> {
        let (kind, rest) = if let Some(rest) = text.strip_prefix("oci:") {
            (SourceKind::Oci, rest)
        } else if let Some(rest) = text.strip_prefix("oci-archive:") {
            (SourceKind::OciArchive, rest)
        } else if let Some(rest) = text.strip_prefix("docker-archive:") {
            (SourceKind::DockerArchive, rest)
        } else {
            return Err(format!(
                "'{text}' is not a source: use oci:DIR, oci-archive:FILE or docker-archive:FILE (optionally followed by :REF)"
            ));
        };
        // A reference holds no '/', so "a:b/c" is a path with a colon.
        let (path, reference) = match rest.rsplit_once(':') {
            Some((path, reference)) if !reference.contains('/') && !path.is_empty() => {
                (path, Some(reference.to_string()))
            }
            _ => (rest, None),
        };
        if path.is_empty() {
            return Err(format!("'{text}' names no path"));
        }
        Ok(ImageSource {
            kind,
            path: base.join(path),
            reference,
        })
    }
}

/// The files of a layout: a directory, or the members of a tar file.
pub enum Files {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        /// Member name → (offset of its data, size).
        members: HashMap<String, (u64, u64)>,
    },
}

fn normalise(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Files {
    fn open_tar(path: &Path) -> std::io::Result<Files> {
        let file = std::fs::File::open(path)?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let name = normalise(&entry.path()?.to_string_lossy());
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name()? {
                        let target = target.to_string_lossy().to_string();
                        let resolved = if target.starts_with('/') {
                            normalise(&target)
                        } else {
                            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                            normalise(&format!("{dir}/{target}"))
                        };
                        links.push((name, resolved));
                    }
                }
                _ => {}
            }
        }
        for (name, target) in links {
            if let Some(found) = members.get(&target).copied() {
                members.insert(name, found);
            }
        }
        Ok(Files::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Files::Dir(dir) => dir.join(name).is_file(),
            Files::Tar { members, .. } => members.contains_key(&normalise(name)),
        }
    }

    fn describe(&self, name: &str) -> String {
        match self {
            Files::Dir(dir) => dir.join(name).display().to_string(),
            Files::Tar { path, .. } => format!("{} in {}", name, path.display()),
        }
    }

    /// A reader over one file and its size.
    fn reader(&self, name: &str) -> std::io::Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Files::Dir(dir) => {
                let file = std::fs::File::open(dir.join(name))?;
                let size = file.metadata()?.len();
                Ok((Box::new(file), size))
            }
            Files::Tar { path, members } => {
                let (offset, size) = members.get(&normalise(name)).copied().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such member")
                })?;
                let mut file = std::fs::File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                Ok((Box::new(file.take(size)), size))
            }
        }
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>, String> {
        let (reader, size) = self
            .reader(name)
            .map_err(|e| format!("cannot read {}: {e}", self.describe(name)))?;
        if size > MAX_METADATA_FILE {
            return Err(format!(
                "{} is {size} bytes, too big for an index, manifest or config",
                self.describe(name)
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        reader
            .take(MAX_METADATA_FILE)
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot read {}: {e}", self.describe(name)))?;
        Ok(out)
    }

    fn sha256(&self, name: &str) -> Result<(Digest, u64), String> {
        let (mut reader, size) = self
            .reader(name)
            .map_err(|e| format!("cannot read {}: {e}", self.describe(name)))?;
        let mut hasher = Hasher::new(crate::digest::Algorithm::Sha256);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("cannot read {}: {e}", self.describe(name)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok((hasher.finish(), size))
    }

    /// The file's bytes as a stream, for an upload.
    pub async fn stream(&self, name: &str) -> std::io::Result<ByteStream> {
        use tokio::io::AsyncReadExt;
        let (path, offset, size) = match self {
            Files::Dir(dir) => (dir.join(name), 0, None),
            Files::Tar { path, members } => {
                let (offset, size) = members.get(&normalise(name)).copied().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such member")
                })?;
                (path.clone(), offset, Some(size))
            }
        };
        let mut file = tokio::fs::File::open(path).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        let reader = file.take(size.unwrap_or(u64::MAX));
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            256 * 1024,
        )))
    }
}

/// A blob to push, and where its bytes are.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub digest: Digest,
    pub file: String,
}

/// A manifest to push.
#[derive(Debug, Clone)]
pub struct ManifestToPush {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// An image read from its source, ready to push.
pub struct LoadedImage {
    pub files: Files,
    /// Each blob once, in the order first needed.
    pub blobs: Vec<BlobFile>,
    /// Children first; the last is the image the tags name.
    pub manifests: Vec<ManifestToPush>,
}

impl LoadedImage {
    pub fn top_digest(&self) -> Option<&Digest> {
        self.manifests.last().map(|m| &m.digest)
    }
}

/// Reads an image from its source.
pub fn load(source: &ImageSource) -> Result<LoadedImage, String> {
    let shown = source.path.display();
    let files = match source.kind {
        SourceKind::Oci => {
            if !source.path.is_dir() {
                return Err(format!("{shown}: not a directory"));
            }
            Files::Dir(source.path.clone())
        }
        SourceKind::OciArchive | SourceKind::DockerArchive => {
            Files::open_tar(&source.path).map_err(|e| format!("{shown}: {e}"))?
        }
    };
    let as_layout = files.exists("index.json")
        && (source.kind != SourceKind::DockerArchive || files.exists("oci-layout"));
    if as_layout {
        load_layout(files, source.reference.as_deref())
    } else if source.kind == SourceKind::DockerArchive {
        load_docker_archive(files, source.reference.as_deref())
    } else {
        Err(format!("{shown}: not an OCI image layout (no index.json)"))
    }
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

fn load_layout(files: Files, reference: Option<&str>) -> Result<LoadedImage, String> {
    let index_bytes = files.read_small("index.json")?;
    let index = manifest::parse(&index_bytes, Some(manifest::OCI_INDEX))
        .map_err(|e| format!("{}: {}", files.describe("index.json"), e.message))?;
    let chosen = match reference {
        Some(wanted) => index
            .manifests
            .iter()
            .find(|d| {
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .and_then(|v| v.as_str())
                    == Some(wanted)
            })
            .ok_or_else(|| {
                format!(
                    "{} lists no manifest named '{wanted}'",
                    files.describe("index.json")
                )
            })?,
        None => match index.manifests.as_slice() {
            [only] => only,
            [] => {
                return Err(format!(
                    "{} lists no manifest",
                    files.describe("index.json")
                ))
            }
            _ => {
                return Err(format!(
                    "{} lists {} manifests: name one with :REF",
                    files.describe("index.json"),
                    index.manifests.len()
                ))
            }
        },
    };
    let mut image = LoadedImage {
        files,
        blobs: Vec::new(),
        manifests: Vec::new(),
    };
    add_manifest(&mut image, &chosen.digest, &chosen.media_type, 0)?;
    Ok(image)
}

/// Reads a manifest from the layout and, first, what it refers to.
fn add_manifest(
    image: &mut LoadedImage,
    digest: &Digest,
    media_type: &str,
    depth: usize,
) -> Result<(), String> {
    if depth > 4 {
        return Err("image indexes nest too deeply".into());
    }
    if image.manifests.iter().any(|m| &m.digest == digest) {
        return Ok(());
    }
    let name = blob_name(digest);
    let bytes = image.files.read_small(&name)?;
    if &Digest::of(digest.algorithm(), &bytes) != digest {
        return Err(format!(
            "{} does not have the digest {digest}",
            image.files.describe(&name)
        ));
    }
    let parsed = manifest::parse(&bytes, Some(media_type))
        .map_err(|e| format!("{}: {}", image.files.describe(&name), e.message))?;
    for child in &parsed.manifests {
        add_manifest(image, &child.digest, &child.media_type, depth + 1)?;
    }
    for blob in parsed.required_blobs() {
        let file = blob_name(&blob.digest);
        if !image.files.exists(&file) {
            return Err(format!(
                "the blob {} is not in the layout ({})",
                blob.digest,
                image.files.describe(&file)
            ));
        }
        if !image.blobs.iter().any(|b| b.digest == blob.digest) {
            image.blobs.push(BlobFile {
                digest: blob.digest.clone(),
                file,
            });
        }
    }
    image.manifests.push(ManifestToPush {
        digest: digest.clone(),
        media_type: parsed.media_type,
        bytes: Bytes::from(bytes),
    });
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn load_docker_archive(files: Files, reference: Option<&str>) -> Result<LoadedImage, String> {
    if !files.exists("manifest.json") {
        return Err(format!(
            "{}: not a docker save archive (no manifest.json)",
            files.describe("")
        ));
    }
    let listing = files.read_small("manifest.json")?;
    let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&listing)
        .map_err(|e| format!("{}: {e}", files.describe("manifest.json")))?;
    let entry = match reference {
        Some(wanted) => entries
            .iter()
            .find(|e| {
                e.repo_tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|t| t == wanted))
            })
            .ok_or_else(|| format!("no image of the archive is tagged '{wanted}'"))?,
        None => match entries.as_slice() {
            [only] => only,
            [] => return Err("the archive holds no image".into()),
            _ => {
                return Err(format!(
                    "the archive holds {} images: name one with :REPO:TAG",
                    entries.len()
                ))
            }
        },
    };
    let config_bytes = files.read_small(&entry.config)?;
    let config_digest = Digest::sha256_of(&config_bytes);
    let mut blobs = vec![BlobFile {
        digest: config_digest.clone(),
        file: entry.config.clone(),
    }];
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let (digest, size) = files.sha256(layer)?;
        let compressed = {
            let (mut reader, _) = files
                .reader(layer)
                .map_err(|e| format!("cannot read {}: {e}", files.describe(layer)))?;
            let mut magic = [0u8; 2];
            reader.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
        };
        let media_type = if compressed {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        layers.push(json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size }));
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(BlobFile {
                digest,
                file: layer.clone(),
            });
        }
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).map_err(|e| e.to_string())?);
    Ok(LoadedImage {
        files,
        blobs,
        manifests: vec![ManifestToPush {
            digest: Digest::sha256_of(&bytes),
            media_type: manifest::OCI_MANIFEST.to_string(),
            bytes,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        let base = Path::new("/seed");
        let s = ImageSource::parse("oci:./layouts/app", base).unwrap();
        assert_eq!(s.kind, SourceKind::Oci);
        assert_eq!(s.path, Path::new("/seed/./layouts/app"));
        assert_eq!(s.reference, None);
        let s = ImageSource::parse("oci-archive:app.tar:v1", base).unwrap();
        assert_eq!(s.kind, SourceKind::OciArchive);
        assert_eq!(s.reference.as_deref(), Some("v1"));
        let s = ImageSource::parse("docker-archive:/abs/app.tar", base).unwrap();
        assert_eq!(s.path, Path::new("/abs/app.tar"));
        assert!(ImageSource::parse("docker://x", base).is_err());
        assert!(ImageSource::parse("oci:", base).is_err());
    }

    #[test]
    fn names_normalise() {
        assert_eq!(normalise("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalise("a/../b/c"), "b/c");
    }
}
