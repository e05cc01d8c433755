//! Zip (APPNOTE 6.3) written as a stream: each entry stored (not compressed) with a data
//! descriptor after its content (its CRC and size are known once it is sent), Zip64 fields
//! where a size or an offset needs them, UTF-8 names, and the central directory at the end
//! (its bytes are the only thing that grows with the number of entries).

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// Bit 3: sizes and CRC follow the content; bit 11: names are UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
/// Made by: Unix, version 4.5 (Zip64).
const MADE_BY: u16 = (3 << 8) | 45;
const LIMIT: u64 = 0xffff_ffff;

/// What the central directory needs of an entry, once it is sent.
pub struct Sent {
    pub crc: u32,
    pub size: u64,
}

/// The archive's state: where the next entry starts, and the central directory so far.
#[derive(Default)]
pub struct Zip {
    offset: u64,
    central: Vec<u8>,
    entries: u64,
    /// The entry being sent.
    current: Option<Entry>,
}

/// What the central directory needs of an entry whose content is being sent.
struct Entry {
    name: String,
    offset: u64,
    time: u16,
    date: u16,
    mode: u32,
    zip64: bool,
}

impl Zip {
    /// Appends an entry's local header; its content follows, then `finish_entry`. `size` is
    /// what the file holds now (a Zip64 entry when it reaches 4 GiB).
    pub fn begin_entry(
        &mut self,
        out: &mut Vec<u8>,
        name: &str,
        size: u64,
        modified: i64,
        mode: u32,
    ) {
        let zip64 = size >= LIMIT || self.offset >= LIMIT;
        let start = out.len();
        put32(out, LOCAL);
        put16(out, if zip64 { 45 } else { 20 });
        put16(out, FLAGS);
        put16(out, 0);
        let (time, date) = dos_time(modified);
        put16(out, time);
        put16(out, date);
        put32(out, 0);
        let placeholder = if zip64 { LIMIT as u32 } else { 0 };
        put32(out, placeholder);
        put32(out, placeholder);
        put16(out, name.len() as u16);
        put16(out, if zip64 { 20 } else { 0 });
        out.extend_from_slice(name.as_bytes());
        if zip64 {
            put16(out, 0x0001);
            put16(out, 16);
            put64(out, 0);
            put64(out, 0);
        }
        let header = (out.len() - start) as u64;
        self.current = Some(Entry {
            name: name.to_owned(),
            offset: self.offset,
            time,
            date,
            mode,
            zip64,
        });
        self.offset += header;
    }

    /// Counts content bytes of the current entry as they are sent.
    pub fn sent(&mut self, n: u64) {
        self.offset += n;
    }

    /// Appends the current entry's data descriptor and records it for the central directory.
    pub fn finish_entry(&mut self, out: &mut Vec<u8>, sent: Sent) {
        let Some(Entry {
            name,
            offset,
            time,
            date,
            mode,
            zip64,
        }) = self.current.take()
        else {
            return;
        };
        let start = out.len();
        put32(out, DESCRIPTOR);
        put32(out, sent.crc);
        if zip64 {
            put64(out, sent.size);
            put64(out, sent.size);
        } else {
            put32(out, sent.size as u32);
            put32(out, sent.size as u32);
        }
        self.offset += (out.len() - start) as u64;
        // Its central directory header, with Zip64 fields for what does not fit.
        let c = &mut self.central;
        let big_size = sent.size >= LIMIT;
        let big_offset = offset >= LIMIT;
        let mut extra = Vec::new();
        if big_size {
            put64(&mut extra, sent.size);
            put64(&mut extra, sent.size);
        }
        if big_offset {
            put64(&mut extra, offset);
        }
        put32(c, CENTRAL);
        put16(c, MADE_BY);
        put16(c, if zip64 || !extra.is_empty() { 45 } else { 20 });
        put16(c, FLAGS);
        put16(c, 0);
        put16(c, time);
        put16(c, date);
        put32(c, sent.crc);
        let size = if big_size {
            LIMIT as u32
        } else {
            sent.size as u32
        };
        put32(c, size);
        put32(c, size);
        put16(c, name.len() as u16);
        put16(
            c,
            if extra.is_empty() {
                0
            } else {
                extra.len() as u16 + 4
            },
        );
        put16(c, 0);
        put16(c, 0);
        put16(c, 0);
        let kind = if name.ends_with('/') {
            0o040_000
        } else {
            0o100_000
        };
        put32(c, (kind | mode) << 16);
        put32(
            c,
            if big_offset {
                LIMIT as u32
            } else {
                offset as u32
            },
        );
        c.extend_from_slice(name.as_bytes());
        if !extra.is_empty() {
            put16(c, 0x0001);
            put16(c, extra.len() as u16);
            c.extend_from_slice(&extra);
        }
        self.entries += 1;
    }

    /// Appends the central directory and the end records.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        let at = self.offset;
        let size = self.central.len() as u64;
        out.append(&mut self.central);
        let zip64 = at >= LIMIT || size >= LIMIT || self.entries >= 0xffff;
        if zip64 {
            let end64 = at + size;
            put32(out, END64);
            put64(out, 44);
            put16(out, MADE_BY);
            put16(out, 45);
            put32(out, 0);
            put32(out, 0);
            put64(out, self.entries);
            put64(out, self.entries);
            put64(out, size);
            put64(out, at);
            put32(out, LOCATOR64);
            put32(out, 0);
            put64(out, end64);
            put32(out, 1);
        }
        let entries = if zip64 { 0xffff } else { self.entries as u16 };
        put32(out, END);
        put16(out, 0);
        put16(out, 0);
        put16(out, entries);
        put16(out, entries);
        put32(out, if zip64 { LIMIT as u32 } else { size as u32 });
        put32(out, if zip64 { LIMIT as u32 } else { at as u32 });
        put16(out, 0);
    }
}

/// MS-DOS time and date of a Unix time (UTC; before 1980 is 1980-01-01).
fn dos_time(secs: i64) -> (u16, u16) {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.max(315_532_800))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = (t.year() - 1980).clamp(0, 127) as u16;
    let date = (year << 9) | ((t.month() as u16) << 5) | u16::from(t.day());
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | (u16::from(t.second()) / 2);
    (time, date)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_archive_has_the_records_in_order() {
        let mut zip = Zip::default();
        let mut out = Vec::new();
        zip.begin_entry(&mut out, "a/", 0, 1_700_000_000, 0o755);
        zip.finish_entry(&mut out, Sent { crc: 0, size: 0 });
        zip.begin_entry(&mut out, "a/b.txt", 3, 1_700_000_000, 0o644);
        let before = out.len();
        out.extend_from_slice(b"abc");
        zip.sent(3);
        zip.finish_entry(
            &mut out,
            Sent {
                crc: crc32fast::hash(b"abc"),
                size: 3,
            },
        );
        zip.end(&mut out);
        assert_eq!(&out[..4], &LOCAL.to_le_bytes());
        assert_eq!(&out[before..before + 3], b"abc");
        let end = out.len() - 22;
        assert_eq!(&out[end..end + 4], &END.to_le_bytes());
        assert_eq!(u16::from_le_bytes([out[end + 10], out[end + 11]]), 2);
        let cd_at = u32::from_le_bytes(out[end + 16..end + 20].try_into().unwrap()) as usize;
        assert_eq!(&out[cd_at..cd_at + 4], &CENTRAL.to_le_bytes());
        assert_eq!(dos_time(0), (0, (1 << 5) | 1));
    }
}
