//! Reading users and groups out of an image through the archive API: no shell needed.

use std::collections::HashMap;
use std::io::Read;

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub uid: u32,
    pub gid: u32,
    /// The home directory (empty when the line has none).
    pub home: String,
}

/// The contents of the first file in a tar stream (the archive API wraps a single file in
/// a tar). `None` when the stream holds no readable file.
pub fn first_file_bytes(tar_bytes: &[u8]) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = archive.entries().ok()?;
    let mut entry = entries.next()?.ok()?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// [`first_file_bytes`] as text; `None` when it is not UTF-8.
pub fn first_file(tar_bytes: &[u8]) -> Option<String> {
    String::from_utf8(first_file_bytes(tar_bytes)?).ok()
}

/// uid and gid of the first entry of a tar stream: the owner of the path asked for. Needs
/// only the first 512-byte header.
pub fn first_header_owner(tar_bytes: &[u8]) -> Option<(u32, u32)> {
    first_header(tar_bytes).map(|(o, _)| (o.uid, o.gid))
}

/// Owner and permission bits (`0o7777`) of the first entry of a tar stream: the path asked
/// for. Needs only the first 512-byte header.
pub fn first_header(tar_bytes: &[u8]) -> Option<(crate::model::owner::Owner, u32)> {
    let block: &[u8; 512] = tar_bytes.get(..512)?.try_into().ok()?;
    let header = tar::Header::from_byte_slice(block);
    let owner = crate::model::owner::Owner::new(header.uid().ok()? as u32, header.gid().ok()? as u32);
    Some((owner, header.mode().ok()? & 0o7777))
}

/// The `:`-separated fields of each line with at least `min` fields and a name; comments
/// and shorter lines are skipped.
fn records(text: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<&str>>())
        .filter(move |f| f.len() >= min && !f[0].is_empty())
}

/// name → ids, from /etc/passwd text. Malformed lines are skipped.
pub fn parse_passwd(text: &str) -> HashMap<String, PasswdEntry> {
    records(text, 4)
        .filter_map(|f| {
            let home = f.get(5).copied().unwrap_or_default().to_string();
            Some((f[0].to_string(), PasswdEntry { uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home }))
        })
        .collect()
}

/// The login name of `uid` in /etc/passwd text: the first line that has it, as getpwuid
/// finds it (`root` before a `toor` of the same uid).
pub fn login_name(text: &str, uid: u32) -> Option<&str> {
    records(text, 4).find(|f| f[2].parse() == Ok(uid)).map(|f| f[0])
}

/// name → gid, from /etc/group text. Malformed lines are skipped.
pub fn parse_group(text: &str) -> HashMap<String, u32> {
    records(text, 3).filter_map(|f| Some((f[0].to_string(), f[2].parse().ok()?))).collect()
}

/// A tar stream of one file, as the archive API returns it; for tests.
#[cfg(any(test, feature = "testkit"))]
pub fn tar_of(path: &str, body: &[u8], uid: u64, gid: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, path, body).unwrap();
    b.into_inner().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passwd_out_of_a_tar() {
        let t = tar_of("passwd", b"root:x:0:0:root:/root:/bin/sh\nredis:x:999:1000::/data:/sbin/nologin\nbad\n", 0, 0);
        let users = parse_passwd(&first_file(&t).unwrap());
        assert_eq!(users["redis"], PasswdEntry { uid: 999, gid: 1000, home: "/data".into() });
        assert_eq!(users["root"].uid, 0);
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn owner_from_first_header() {
        let t = tar_of("data", b"", 999, 1000);
        assert_eq!(first_header_owner(&t[..512]), Some((999, 1000)));
        assert_eq!(first_header_owner(&t[..100]), None);
        assert_eq!(first_header(&t[..512]).map(|(_, mode)| mode), Some(0o644));
    }

    #[test]
    fn groups() {
        let g = parse_group("root:x:0:\nvideo:x:44:ollama\n");
        assert_eq!(g["video"], 44);
    }
}
