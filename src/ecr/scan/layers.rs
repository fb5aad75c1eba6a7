//! The image file system a scan sees. Owns decoding a layer blob (gzip, zstd
//! or plain tar, sniffed from its first bytes rather than trusted from the
//! media type, as containerd does), streaming its tar entries, and applying
//! them in manifest order the way the OCI image spec's layer changesets say
//! (`image-spec/layer.md`: additions and modifications replace what lower
//! layers held, `.wh.<name>` deletes a path and everything under it from the
//! lower layers, `.wh..wh..opq` hides every lower entry of its directory).
//!
//! Nothing is unpacked: a [`Select`] names the few files a scan cares about
//! and parses each one as it streams past, so memory is bounded by what the
//! inventory keeps, not by the size of a layer. Symlinks among the kept paths
//! are resolved at the end (`/etc/os-release -> ../usr/lib/os-release`).
//! Executables are streamed through [`go_build_info`], which finds the build
//! information a Go toolchain (1.18 or later) embeds in every binary.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::ops::Bound;

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The largest file kept for parsing; larger ones are skipped (a scan of a
/// strange image should report less, not fail or exhaust memory).
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// How many symlinks one path may pass through, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// The opaque-directory marker of the OCI layer format.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of a whiteout entry.
const WHITEOUT_PREFIX: &str = ".wh.";
/// AUFS keeps its own bookkeeping under `.wh..wh.` names; they delete nothing.
const AUFS_META_PREFIX: &str = ".wh..wh.";

/// Which files a caller wants from the image and what it keeps of them.
pub trait Select {
    /// What is kept per file (parsed, so a large file costs only its result).
    type Item: Clone;
    /// Whether the regular file at this normalized absolute path is read.
    fn wants_file(&self, path: &str) -> bool;
    /// Whether a symlink at this path is kept for [`FileSystem::resolve`].
    fn wants_link(&self, path: &str) -> bool;
    /// Parses a wanted file's bytes; `None` keeps nothing (and still hides
    /// whatever lower layers held at the path).
    fn parse_file(&mut self, path: &str, bytes: &[u8]) -> Option<Self::Item>;
    /// Turns the build information of a Go executable into what is kept.
    fn parse_go(&mut self, path: &str, info: GoBuildInfo) -> Option<Self::Item>;
}

/// Why a layer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerFailure {
    /// The blob failed to read, decompress or parse as tar.
    Unreadable,
    /// The blob is in a format a scan does not read (xz, bzip2).
    Unsupported,
}

/// A layer that could not be applied, naming its index in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerError {
    pub layer: usize,
    pub failure: LayerFailure,
    pub message: String,
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer {}: {}", self.layer, self.message)
    }
}

impl std::error::Error for LayerError {}

/// The build information embedded in a Go binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain, as recorded (`go1.21.3`).
    pub go_version: String,
    /// The module information text without its sentinels: `path`, `mod`,
    /// `dep`, `=>` and `build` lines (empty if built without modules).
    pub modinfo: String,
}

/// One kept path in the union file system.
#[derive(Debug, Clone)]
enum Node<T> {
    File {
        layer: usize,
        /// Came from a Go binary rather than from a wanted path: a hard link
        /// to it is itself a Go binary wherever it lives.
        go: bool,
        item: T,
    },
    Link {
        layer: usize,
        target: String,
    },
}

impl<T> Node<T> {
    fn layer(&self) -> usize {
        match self {
            Node::File { layer, .. } | Node::Link { layer, .. } => *layer,
        }
    }

    fn set_layer(&mut self, index: usize) {
        match self {
            Node::File { layer, .. } | Node::Link { layer, .. } => *layer = index,
        }
    }
}

/// A kept file of the final file system.
#[derive(Debug, Clone)]
pub struct FileRef<'a, T> {
    /// Normalized absolute path (after resolving symlinks, for [`FileSystem::get`]).
    pub path: &'a str,
    /// The layer that last wrote the file.
    pub layer: usize,
    pub item: &'a T,
}

/// The kept files (and symlinks) of an image after applying its layers.
#[derive(Debug, Clone)]
pub struct FileSystem<T> {
    nodes: BTreeMap<String, Node<T>>,
}

impl<T: Clone> Default for FileSystem<T> {
    fn default() -> Self {
        FileSystem {
            nodes: BTreeMap::new(),
        }
    }
}

impl<T: Clone> FileSystem<T> {
    /// Applies every layer in manifest order (index 0 is the base).
    pub fn read_layers<I, R, S>(layers: I, select: &mut S) -> Result<FileSystem<T>, LayerError>
    where
        I: IntoIterator<Item = io::Result<R>>,
        R: Read,
        S: Select<Item = T>,
    {
        let mut fs = FileSystem::default();
        for (index, blob) in layers.into_iter().enumerate() {
            let blob = blob.map_err(|e| LayerError {
                layer: index,
                failure: LayerFailure::Unreadable,
                message: format!("opening blob: {e}"),
            })?;
            fs.apply_layer(index, blob, select)?;
        }
        Ok(fs)
    }

    /// Streams one layer blob over the file system built so far.
    pub fn apply_layer<R, S>(
        &mut self,
        index: usize,
        blob: R,
        select: &mut S,
    ) -> Result<(), LayerError>
    where
        R: Read,
        S: Select<Item = T>,
    {
        let unreadable = |message: String| LayerError {
            layer: index,
            failure: LayerFailure::Unreadable,
            message,
        };
        let tar_stream = decompress(blob).map_err(|e| match e {
            DecodeError::Io(e) => unreadable(format!("reading blob: {e}")),
            DecodeError::Unsupported(format) => LayerError {
                layer: index,
                failure: LayerFailure::Unsupported,
                message: format!("{format}-compressed layers are not supported"),
            },
        })?;
        let mut archive = tar::Archive::new(tar_stream);
        let entries = archive
            .entries()
            .map_err(|e| unreadable(format!("reading tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| unreadable(format!("reading tar: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize(&raw);
            self.apply_entry(index, &path, raw.ends_with('/'), &mut entry, select)
                .map_err(|e| unreadable(format!("reading {path}: {e}")))?;
        }
        Ok(())
    }

    fn apply_entry<R, S>(
        &mut self,
        index: usize,
        path: &str,
        slash: bool,
        entry: &mut tar::Entry<'_, R>,
        select: &mut S,
    ) -> io::Result<()>
    where
        R: Read,
        S: Select<Item = T>,
    {
        if path == "/" {
            return Ok(());
        }
        let (parent, name) = split(path);
        if name == OPAQUE_MARKER {
            self.remove_under(parent, index);
            return Ok(());
        }
        if name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let target = normalize(&format!("{parent}/{hidden}"));
            if target != "/" {
                self.remove_tree(&target, index);
            }
            return Ok(());
        }

        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        if kind.is_dir() || (slash && kind.is_file()) {
            // A directory merges with a lower directory, but replaces a lower
            // file or symlink of the same name.
            self.nodes.remove(path);
            return Ok(());
        }
        // Anything else replaces what the path held, a whole lower directory
        // included (as extracting the layer over the lower ones would).
        self.remove_tree(path, index);
        self.nodes.remove(path);

        if kind.is_symlink() {
            if select.wants_link(path) {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    self.nodes.insert(
                        path.to_owned(),
                        Node::Link {
                            layer: index,
                            target,
                        },
                    );
                }
            }
            return Ok(());
        }
        if kind.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else {
                return Ok(());
            };
            let target = normalize(&String::from_utf8_lossy(&target));
            if let Some(node) = self.nodes.get(&target) {
                let keep = match node {
                    Node::File { go, .. } => *go || select.wants_file(path),
                    Node::Link { .. } => select.wants_link(path),
                };
                if keep {
                    let mut copy = node.clone();
                    copy.set_layer(index);
                    self.nodes.insert(path.to_owned(), copy);
                }
            }
            return Ok(());
        }
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            return Ok(());
        }

        if select.wants_file(path) {
            let size = entry.size();
            if size > MAX_FILE_SIZE {
                return Ok(());
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut *entry)
                .take(MAX_FILE_SIZE + 1)
                .read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_FILE_SIZE {
                return Ok(());
            }
            if let Some(item) = select.parse_file(path, &bytes) {
                self.nodes.insert(
                    path.to_owned(),
                    Node::File {
                        layer: index,
                        go: false,
                        item,
                    },
                );
            }
            return Ok(());
        }

        let mode = entry.header().mode().unwrap_or(0);
        if mode & 0o111 != 0 {
            if let Some(info) = go_build_info(&mut *entry)? {
                if let Some(item) = select.parse_go(path, info) {
                    self.nodes.insert(
                        path.to_owned(),
                        Node::File {
                            layer: index,
                            go: true,
                            item,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Deletes `path` and everything under it that a lower layer wrote.
    fn remove_tree(&mut self, path: &str, below: usize) {
        if self.nodes.get(path).is_some_and(|n| n.layer() < below) {
            self.nodes.remove(path);
        }
        self.remove_under(path, below);
    }

    /// Deletes everything strictly inside directory `dir` that a lower layer
    /// wrote; what this layer wrote stays, whatever the tar order.
    fn remove_under(&mut self, dir: &str, below: usize) {
        let prefix = if dir.is_empty() || dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter(|(_, node)| node.layer() < below)
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    /// Follows the kept symlinks along `path` (any component may be one),
    /// returning the normalized path they lead to; `None` on a loop.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(part);
            if let Some(Node::Link { target, .. }) = self.nodes.get(&join(&resolved)) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
        }
        Some(join(&resolved))
    }

    /// The kept file at `path`, following symlinks.
    pub fn get(&self, path: &str) -> Option<FileRef<'_, T>> {
        let resolved = self.resolve(path)?;
        match self.nodes.get_key_value(&resolved)? {
            (key, Node::File { layer, item, .. }) => Some(FileRef {
                path: key,
                layer: *layer,
                item,
            }),
            (_, Node::Link { .. }) => None,
        }
    }

    /// Every kept regular file, in path order.
    pub fn files(&self) -> impl Iterator<Item = FileRef<'_, T>> {
        self.nodes.iter().filter_map(|(key, node)| match node {
            Node::File { layer, item, .. } => Some(FileRef {
                path: key,
                layer: *layer,
                item,
            }),
            Node::Link { .. } => None,
        })
    }
}

/// Makes a tar path absolute and canonical: no `.` or empty components, and
/// `..` stops at the root (a layer must not write outside the image).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 1);
    for part in parts {
        out.push('/');
        out.push_str(part);
    }
    out
}

fn join<S: AsRef<str>>(parts: &[S]) -> String {
    if parts.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::new();
    for part in parts {
        out.push('/');
        out.push_str(part.as_ref());
    }
    out
}

/// Splits a normalized path into its parent ("" for the root) and name.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

enum DecodeError {
    Io(io::Error),
    Unsupported(&'static str),
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";

/// Wraps a blob in the decoder its first bytes call for.
fn decompress<'a, R: Read + 'a>(mut blob: R) -> Result<Box<dyn Read + 'a>, DecodeError> {
    let mut head = Vec::with_capacity(XZ_MAGIC.len());
    (&mut blob)
        .take(XZ_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(DecodeError::Io)?;
    if head.starts_with(XZ_MAGIC) {
        return Err(DecodeError::Unsupported("xz"));
    }
    if head.starts_with(BZIP2_MAGIC) {
        return Err(DecodeError::Unsupported("bzip2"));
    }
    let gzip = head.starts_with(GZIP_MAGIC);
    let zstd = head.starts_with(ZSTD_MAGIC);
    let whole = Cursor::new(head).chain(blob);
    Ok(if gzip {
        // Multi-member, as pigz and some registries' recompressors write.
        Box::new(flate2::read::MultiGzDecoder::new(whole))
    } else if zstd {
        Box::new(ZstdFrames::new(BufReader::new(whole)))
    } else {
        Box::new(whole)
    })
}

/// A zstd stream of any number of frames (zstd:chunked layers are many,
/// with skippable frames between), decoded as it is read.
struct ZstdFrames<R: BufRead> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

fn invalid_zstd(e: FrameDecoderError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.decoder.reset(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let skipped = io::copy(
                            &mut (&mut self.source).take(u64::from(length)),
                            &mut io::sink(),
                        )?;
                        if skipped < u64::from(length) {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        continue;
                    }
                    Err(e) => return Err(invalid_zstd(e)),
                }
            }
            // Decoding in steps of what the caller asked for keeps the
            // buffer at about one window, however large the frame.
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let wanted = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(wanted))
                    .map_err(invalid_zstd)?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
            }
        }
    }
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
/// `debug/buildinfo`'s header magic, always at a 16-byte aligned offset.
const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
const GO_BUILDINFO_ALIGN: usize = 16;
/// Magic (14), pointer size, flags, then padding to 32 bytes.
const GO_BUILDINFO_HEADER: usize = 32;
/// Go 1.18+: the version and module strings follow the header inline.
const GO_FLAG_INLINE: u8 = 0x2;
/// How much of a binary is scanned per step (a multiple of the alignment).
const GO_SCAN_CHUNK: usize = 256 * 1024;
/// The most read after a magic for the two strings; real module lists are
/// tens of KiB.
const GO_MAX_BUILDINFO: usize = 1024 * 1024;

/// Streams an executable looking for Go's embedded build information; only
/// ELF files are searched. Memory stays under `GO_SCAN_CHUNK +
/// GO_MAX_BUILDINFO` whatever the file's size. Binaries from Go before 1.18
/// (pointer-based format, which needs the ELF sections to follow) give
/// `None`, as do binaries without build information.
pub fn go_build_info<R: Read>(mut file: R) -> io::Result<Option<GoBuildInfo>> {
    let mut buf = Vec::with_capacity(GO_SCAN_CHUNK + GO_MAX_BUILDINFO);
    let mut eof = fill(&mut file, &mut buf, ELF_MAGIC.len())?;
    if !buf.starts_with(ELF_MAGIC) {
        return Ok(None);
    }
    loop {
        if !eof {
            eof = fill(&mut file, &mut buf, GO_SCAN_CHUNK)?;
        }
        // `buf` always starts at a multiple of 16 in the file, so stepping
        // by 16 visits exactly the aligned offsets.
        let mut at = 0;
        while at < GO_SCAN_CHUNK && at + GO_BUILDINFO_MAGIC.len() <= buf.len() {
            if buf[at..].starts_with(GO_BUILDINFO_MAGIC) {
                if !eof {
                    eof = fill(&mut file, &mut buf, at + GO_MAX_BUILDINFO)?;
                }
                // A binary that embeds the magic as a string constant (one
                // that reads build info itself) may put it on an aligned
                // offset too: a header that does not parse is not the one.
                if let Some(info) = parse_go_build_info(&buf[at..]) {
                    return Ok(Some(info));
                }
            }
            at += GO_BUILDINFO_ALIGN;
        }
        if eof && at + GO_BUILDINFO_MAGIC.len() > buf.len() {
            return Ok(None);
        }
        buf.drain(..at);
    }
}

/// Reads until `buf` holds `len` bytes; `true` if the file ended first.
fn fill<R: Read>(file: &mut R, buf: &mut Vec<u8>, len: usize) -> io::Result<bool> {
    if buf.len() >= len {
        return Ok(false);
    }
    let missing = (len - buf.len()) as u64;
    file.take(missing).read_to_end(buf)?;
    Ok(buf.len() < len)
}

/// Parses the inline (Go 1.18+) build info header and its two strings.
fn parse_go_build_info(data: &[u8]) -> Option<GoBuildInfo> {
    let header = data.get(..GO_BUILDINFO_HEADER)?;
    let ptr_size = header[GO_BUILDINFO_MAGIC.len()];
    let flags = header[GO_BUILDINFO_MAGIC.len() + 1];
    if flags & GO_FLAG_INLINE == 0 || !(ptr_size == 4 || ptr_size == 8) {
        return None;
    }
    let (version, rest) = varint_string(&data[GO_BUILDINFO_HEADER..])?;
    let (modinfo, _) = varint_string(rest)?;
    let version = std::str::from_utf8(version).ok()?;
    if version.is_empty() {
        return None;
    }
    // The module text is framed by 16-byte sentinels; the last line before
    // the closing one ends in a newline (as `debug/buildinfo` checks).
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    Some(GoBuildInfo {
        go_version: version.to_owned(),
        modinfo: String::from_utf8_lossy(modinfo).into_owned(),
    })
}

/// A string prefixed by its length as an unsigned LEB128 varint.
fn varint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut used = 0;
    loop {
        let byte = *data.get(used)?;
        used += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let rest = &data[used..];
    if len > rest.len() {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::io::Write;

    /// Builds a layer tar in memory.
    pub(crate) struct Layer {
        builder: tar::Builder<Vec<u8>>,
    }

    impl Layer {
        pub(crate) fn new() -> Self {
            Layer {
                builder: tar::Builder::new(Vec::new()),
            }
        }

        fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(size);
            header.set_mtime(0);
            // Raw bytes, so tests can write what a hostile layer would
            // (`../` included), which `set_path` refuses.
            let name = &mut header.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            header
        }

        pub(crate) fn file(self, path: &str, data: &[u8]) -> Self {
            self.file_mode(path, 0o644, data)
        }

        pub(crate) fn exe(self, path: &str, data: &[u8]) -> Self {
            self.file_mode(path, 0o755, data)
        }

        pub(crate) fn file_mode(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
            let header = Self::header(path, tar::EntryType::Regular, mode, data.len() as u64);
            self.builder.append(&header, data).unwrap();
            self
        }

        pub(crate) fn dir(mut self, path: &str) -> Self {
            let header = Self::header(path, tar::EntryType::Directory, 0o755, 0);
            self.builder.append(&header, io::empty()).unwrap();
            self
        }

        pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
            let mut header = Self::header(path, tar::EntryType::Symlink, 0o777, 0);
            header.set_link_name(target).unwrap();
            header.set_cksum();
            self.builder.append(&header, io::empty()).unwrap();
            self
        }

        pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
            let mut header = Self::header(path, tar::EntryType::Link, 0o755, 0);
            header.set_link_name(target).unwrap();
            header.set_cksum();
            self.builder.append(&header, io::empty()).unwrap();
            self
        }

        /// `dir/.wh.name` for `dir/name`.
        pub(crate) fn whiteout(self, path: &str) -> Self {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            let marker = if parent.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{parent}/.wh.{name}")
            };
            self.file(&marker, b"")
        }

        pub(crate) fn opaque(self, dir: &str) -> Self {
            self.file(&format!("{dir}/{OPAQUE_MARKER}"), b"")
        }

        pub(crate) fn tar(self) -> Vec<u8> {
            self.builder.into_inner().unwrap()
        }

        pub(crate) fn gzip(self) -> Vec<u8> {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&self.tar()).unwrap();
            gz.finish().unwrap()
        }

        pub(crate) fn zstd(self) -> Vec<u8> {
            ruzstd::encoding::compress_to_vec(
                &self.tar()[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            )
        }
    }

    /// Keeps the text of files under `/keep/` (and `*.txt`), symlinks under
    /// `/link`, and Go binaries as `go:<version>`.
    struct Keep;

    impl Select for Keep {
        type Item = String;
        fn wants_file(&self, path: &str) -> bool {
            path.starts_with("/keep/") || path.ends_with(".txt")
        }
        fn wants_link(&self, path: &str) -> bool {
            path.starts_with("/link")
        }
        fn parse_file(&mut self, _path: &str, bytes: &[u8]) -> Option<String> {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        fn parse_go(&mut self, _path: &str, info: GoBuildInfo) -> Option<String> {
            Some(format!("go:{}", info.go_version))
        }
    }

    fn apply(layers: Vec<Vec<u8>>) -> Result<FileSystem<String>, LayerError> {
        FileSystem::read_layers(layers.into_iter().map(|b| Ok(Cursor::new(b))), &mut Keep)
    }

    fn listing(fs: &FileSystem<String>) -> Vec<(String, usize, String)> {
        fs.files()
            .map(|f| (f.path.to_owned(), f.layer, f.item.clone()))
            .collect()
    }

    fn entry(path: &str, layer: usize, text: &str) -> (String, usize, String) {
        (path.to_owned(), layer, text.to_owned())
    }

    /// An inline (Go 1.18+) build info blob.
    pub(crate) fn go_blob(version: &str, modinfo: &str) -> Vec<u8> {
        fn varint(out: &mut Vec<u8>, mut n: usize) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        let mut blob = GO_BUILDINFO_MAGIC.to_vec();
        blob.push(8);
        blob.push(GO_FLAG_INLINE);
        blob.resize(GO_BUILDINFO_HEADER, 0);
        varint(&mut blob, version.len());
        blob.extend_from_slice(version.as_bytes());
        let mut framed = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        framed.extend_from_slice(modinfo.as_bytes());
        framed.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        varint(&mut blob, framed.len());
        blob.extend_from_slice(&framed);
        blob
    }

    /// A fake ELF with `blob` at `offset` (which the caller keeps aligned).
    pub(crate) fn elf_with(offset: usize, blob: &[u8], total: usize) -> Vec<u8> {
        let mut elf = ELF_MAGIC.to_vec();
        elf.resize(offset, 0x90);
        elf.extend_from_slice(blob);
        if elf.len() < total {
            elf.resize(total, 0xcc);
        }
        elf
    }

    #[test]
    fn normalizes_paths_and_never_escapes_the_root() {
        assert_eq!(normalize("./etc/os-release"), "/etc/os-release");
        assert_eq!(normalize("/usr//lib/./x/"), "/usr/lib/x");
        assert_eq!(normalize("../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("a/b/../../../c"), "/c");
        assert_eq!(normalize("./"), "/");
        assert_eq!(normalize(""), "/");
    }

    #[test]
    fn later_layers_override_and_paths_are_normalized() {
        let base = Layer::new()
            .dir("./keep/")
            .file("./keep/a", b"a0")
            .file("keep/b", b"b0")
            .file("/keep/c", b"c0")
            .file("../../keep/d", b"d0")
            .file("other/ignored", b"x")
            .tar();
        let top = Layer::new().file("keep/a", b"a1").gzip();
        let fs = apply(vec![base, top]).unwrap();
        assert_eq!(
            listing(&fs),
            vec![
                entry("/keep/a", 1, "a1"),
                entry("/keep/b", 0, "b0"),
                entry("/keep/c", 0, "c0"),
                entry("/keep/d", 0, "d0"),
            ]
        );
    }

    #[test]
    fn whiteouts_delete_lower_paths_and_their_subtrees() {
        let base = Layer::new()
            .file("keep/a", b"a")
            .file("keep/dir/x", b"x")
            .file("keep/dir/sub/y", b"y")
            .file("keep/dirx", b"sibling survives")
            .tar();
        let top = Layer::new().whiteout("keep/a").whiteout("keep/dir").tar();
        let fs = apply(vec![base, top]).unwrap();
        assert_eq!(
            listing(&fs),
            vec![entry("/keep/dirx", 0, "sibling survives")]
        );
    }

    #[test]
    fn a_whiteout_does_not_delete_its_own_layers_file() {
        // Not something a well-formed layer holds, but a whiteout speaks
        // only of lower layers.
        let base = Layer::new().file("keep/a", b"old").tar();
        let top = Layer::new().file("keep/a", b"new").whiteout("keep/a").tar();
        let fs = apply(vec![base, top]).unwrap();
        assert_eq!(listing(&fs), vec![entry("/keep/a", 1, "new")]);
    }

    #[test]
    fn opaque_directories_hide_lower_entries_but_not_their_own() {
        let base = Layer::new()
            .file("keep/d/old", b"old")
            .file("keep/d/sub/old", b"old")
            .file("keep/other", b"other")
            .tar();
        // The marker after the layer's own entry: tar order must not matter.
        let top = Layer::new()
            .dir("keep/d")
            .file("keep/d/new", b"new")
            .opaque("keep/d")
            .tar();
        let fs = apply(vec![base, top]).unwrap();
        assert_eq!(
            listing(&fs),
            vec![
                entry("/keep/d/new", 1, "new"),
                entry("/keep/other", 0, "other")
            ]
        );
    }

    #[test]
    fn a_file_replaces_a_lower_directory_and_an_uninteresting_file_hides_a_kept_one() {
        let base = Layer::new()
            .file("keep/d/x", b"x")
            .file("keep/e", b"e")
            .tar();
        let top = Layer::new().file("keep/d", b"now a file").tar();
        let fs = apply(vec![base, top]).unwrap();
        assert_eq!(
            listing(&fs),
            vec![entry("/keep/d", 1, "now a file"), entry("/keep/e", 0, "e")]
        );
        let replaced = Layer::new().symlink("keep/e", "/elsewhere").tar();
        let base = Layer::new().file("keep/e", b"e").tar();
        let fs = apply(vec![base, replaced]).unwrap();
        assert!(listing(&fs).is_empty());
    }

    #[test]
    fn symlinks_resolve_relative_absolute_and_through_directories() {
        let layer = Layer::new()
            .file("keep/real/os.txt", b"os")
            .symlink("link-etc", "keep/real")
            .symlink("link-abs", "/keep/real/os.txt")
            .symlink("link-rel", "./keep/../keep/real/os.txt")
            .symlink("link-loop-a", "link-loop-b")
            .symlink("link-loop-b", "link-loop-a")
            .tar();
        let fs = apply(vec![layer]).unwrap();
        for path in [
            "/link-etc/os.txt",
            "/link-abs",
            "/link-rel",
            "/keep/real/os.txt",
        ] {
            let found = fs.get(path).unwrap();
            assert_eq!(
                (found.path, found.item.as_str()),
                ("/keep/real/os.txt", "os"),
                "{path}"
            );
        }
        assert!(fs.get("/link-loop-a").is_none());
        assert!(fs.get("/link-etc/missing").is_none());
    }

    #[test]
    fn hard_links_copy_the_target() {
        let go = elf_with(64, &go_blob("go1.22.1", ""), 256);
        let layer = Layer::new()
            .file("keep/a", b"a")
            .hardlink("keep/b", "keep/a")
            .hardlink("ignored/c", "keep/a")
            .exe("usr/bin/tool", &go)
            .hardlink("usr/bin/tool2", "usr/bin/tool")
            .tar();
        let fs = apply(vec![layer]).unwrap();
        assert_eq!(
            listing(&fs),
            vec![
                entry("/keep/a", 0, "a"),
                entry("/keep/b", 0, "a"),
                entry("/usr/bin/tool", 0, "go:go1.22.1"),
                entry("/usr/bin/tool2", 0, "go:go1.22.1"),
            ]
        );
    }

    #[test]
    fn zstd_layers_with_several_frames_and_skippable_frames_decode() {
        let tar = Layer::new()
            .file("keep/a", b"a")
            .file("keep/b", &vec![b'b'; 100_000])
            .tar();
        let (first, second) = tar.split_at(700);
        let level = ruzstd::encoding::CompressionLevel::Fastest;
        let mut blob = ruzstd::encoding::compress_to_vec(first, level);
        // A skippable frame, as zstd:chunked writes its manifest in.
        blob.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        blob.extend_from_slice(&5u32.to_le_bytes());
        blob.extend_from_slice(b"skip!");
        blob.extend_from_slice(&ruzstd::encoding::compress_to_vec(second, level));
        let fs = apply(vec![blob, Layer::new().file("keep/c", b"c").zstd()]).unwrap();
        let files = listing(&fs);
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].2.len(), 100_000);
        assert_eq!(files[2], entry("/keep/c", 1, "c"));
    }

    #[test]
    fn unreadable_and_unsupported_layers_name_their_index() {
        let good = Layer::new().file("keep/a", b"a").gzip();
        let mut corrupt = Layer::new().file("keep/a", &vec![7u8; 10_000]).gzip();
        corrupt.truncate(corrupt.len() / 2);
        corrupt[12] ^= 0xff;
        let err = apply(vec![good.clone(), corrupt]).unwrap_err();
        assert_eq!((err.layer, err.failure), (1, LayerFailure::Unreadable));
        assert!(err.to_string().starts_with("layer 1: "), "{err}");

        let err = apply(vec![good.clone(), vec![0x1f, 0x8b, 0, 0, 1, 2, 3]]).unwrap_err();
        assert_eq!((err.layer, err.failure), (1, LayerFailure::Unreadable));

        let err = apply(vec![good.clone(), vec![0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff]]).unwrap_err();
        assert_eq!((err.layer, err.failure), (1, LayerFailure::Unreadable));

        let err = apply(vec![XZ_MAGIC.to_vec()]).unwrap_err();
        assert_eq!((err.layer, err.failure), (0, LayerFailure::Unsupported));

        let failing: Vec<io::Result<Cursor<Vec<u8>>>> = vec![
            Ok(Cursor::new(good)),
            Ok(Cursor::new(Vec::new())),
            Err(io::Error::other("blob vanished")),
        ];
        let err = FileSystem::read_layers(failing, &mut Keep).unwrap_err();
        assert_eq!((err.layer, err.failure), (2, LayerFailure::Unreadable));
        assert!(err.message.contains("blob vanished"));
    }

    #[test]
    fn go_build_info_is_found_at_any_aligned_offset_and_across_chunks() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n";
        for offset in [
            16,
            4096,
            GO_SCAN_CHUNK - 16,
            GO_SCAN_CHUNK,
            3 * GO_SCAN_CHUNK + 48,
        ] {
            let elf = elf_with(offset, &go_blob("go1.21.3", modinfo), 0);
            let info = go_build_info(&elf[..]).unwrap().unwrap();
            assert_eq!(info.go_version, "go1.21.3", "offset {offset}");
            assert_eq!(info.modinfo, modinfo);
        }
    }

    #[test]
    fn go_build_info_skips_unaligned_and_unparsable_magics() {
        let real = go_blob("go1.20.5", "path\tx\n");
        let mut elf = elf_with(32, GO_BUILDINFO_MAGIC, 0);
        // A string constant on an aligned offset, followed by other text.
        elf.extend_from_slice(b"xyzzy, not a header at all.....................");
        elf.resize(203, 0);
        elf.extend_from_slice(&real); // unaligned copy: not the build info
        elf.resize(1024, 0);
        assert_eq!(go_build_info(&elf[..]).unwrap(), None);
        elf.extend_from_slice(&real);
        assert_eq!(
            go_build_info(&elf[..]).unwrap().unwrap().go_version,
            "go1.20.5"
        );
    }

    #[test]
    fn go_build_info_ignores_non_elf_and_pre_1_18_binaries() {
        let blob = go_blob("go1.21.3", "");
        let mut not_elf = b"#!/bin/sh\n".to_vec();
        not_elf.resize(64, b' ');
        not_elf.extend_from_slice(&blob);
        assert_eq!(go_build_info(&not_elf[..]).unwrap(), None);

        let mut old = blob.clone();
        old[15] = 0; // pointer-based format (Go 1.13-1.17)
        assert_eq!(go_build_info(&elf_with(64, &old, 0)[..]).unwrap(), None);
        assert_eq!(go_build_info(&b"\x7fEL"[..]).unwrap(), None);
    }

    /// A reader producing a tar layer on the fly, so a test can stream a
    /// layer far larger than it could afford to hold.
    struct Generated {
        parts: VecDeque<(Vec<u8>, u64)>,
        produced: u64,
    }

    impl Generated {
        /// Entries of (path, mode, size, first bytes); the rest is zeros.
        fn new(entries: &[(&str, u32, u64, &[u8])]) -> Self {
            let mut parts = VecDeque::new();
            for (path, mode, size, head) in entries {
                let header = Layer::header(path, tar::EntryType::Regular, *mode, *size);
                parts.push_back((header.as_bytes().to_vec(), 0));
                let padding = (512 - size % 512) % 512;
                parts.push_back((head.to_vec(), size - head.len() as u64 + padding));
            }
            parts.push_back((Vec::new(), 1024));
            Generated { parts, produced: 0 }
        }
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while let Some((bytes, zeros)) = self.parts.front_mut() {
                if !bytes.is_empty() {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    bytes.drain(..n);
                    self.produced += n as u64;
                    return Ok(n);
                }
                if *zeros > 0 {
                    let n = (*zeros).min(buf.len() as u64) as usize;
                    buf[..n].fill(0);
                    *zeros -= n as u64;
                    self.produced += n as u64;
                    return Ok(n);
                }
                self.parts.pop_front();
            }
            Ok(0)
        }
    }

    #[test]
    fn huge_layers_stream_in_bounded_memory() {
        const BIG: u64 = 1 << 30;
        let layer = Generated::new(&[
            // 1 GiB of an uninteresting file, then 64 MiB of an executable
            // ELF (scanned for Go build info but never held), then a
            // wanted file over the size cap (skipped), then a small one.
            ("data/blob.bin", 0o644, BIG, b""),
            ("usr/bin/huge", 0o755, 64 << 20, ELF_MAGIC),
            ("keep/huge.txt", 0o644, MAX_FILE_SIZE + 1, b"{"),
            ("keep/small", 0o644, 2, b"ok"),
        ]);
        let mut layer = layer;
        let mut fs = FileSystem::default();
        fs.apply_layer(0, &mut layer, &mut Keep).unwrap();
        assert_eq!(listing(&fs), vec![entry("/keep/small", 0, "ok")]);
        assert!(layer.produced > BIG + (64 << 20), "read {}", layer.produced);
    }
}
