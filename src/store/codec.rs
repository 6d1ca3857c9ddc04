//! The compact, versioned byte form of a sample as it lies in the store.
//!
//! Layout of version 3: `version, kind, link varint, presence varint, fields…, checksum` where
//! `kind` packs outcome and trigger and each bit of `presence` says whether an optional field
//! follows, in field order. `link` is how many ms after the previous sample in the file this
//! one lies (0: none before it), so that a scan can tell when the file's index skipped samples.
//! `checksum` is the CRC-32 (4 bytes, little-endian) of the sample's key (its time in ms), the
//! record before it, and the bytes of the dictionary entries it refers to: a changed byte in the
//! time, the record or its server, ISP or engine is detected when the sample is read.
//!
//! The engine (presence bit 16) is a reference into the dictionary, written after the server
//! and ISP references; its entry holds the engine's name and parameters (see
//! `dictionary.rs`). A version 3 record says which engine made it, or that none did.
//!
//! Version 4 is version 3 for a campaign run (trigger code 3, `campaign`), which a version 3
//! reader would call malformed; it is written only for campaign runs.
//!
//! Older records still read. Version 2 is version 3 without the engine (presence bit 16 never
//! set); version 1 (written before 0.2) is version 2 without link and checksum. Every version
//! that wrote them measured with the Ookla CLI only, so a version 1 or 2 record reads with
//! `engine: ookla`, unless its outcome is `skipped` (nothing measured, so `engine: None`, as
//! this version records a skipped run): [`Engine::before_engines`].
//!
//! Decimal figures that are whole multiples of their unit (bytes/s, µs, 1e-6 of a ratio, ms of
//! duration) are stored as varints; any other float falls back to its 8 raw bytes, so every
//! value survives exactly. Server, ISP and engine are references into the dictionary table,
//! because nearly every sample repeats them.

use crate::sample::{Client, Engine, FailureReason, Outcome, Sample, Trigger};
use crate::time::Timestamp;

/// The version written for every run but a campaign's: records carry a checksum and their
/// engine.
pub(super) const VERSION: u8 = 3;
/// Version 3 with the trigger `campaign` (code 3), written only for a `serve --campaign` run.
/// Its own number, because a version 3 reader takes trigger code 3 for damage ("malformed"),
/// while an unknown version makes it say "a newer internet-monitor wrote it"; every other
/// record stays version 3, which older versions read as before.
pub(super) const VERSION_CAMPAIGN: u8 = 4;
/// Records with a checksum but no engine (0.2 until the engine was recorded): still read.
const VERSION_WITHOUT_ENGINE: u8 = 2;
/// The first version, without a checksum: still read.
const VERSION_UNCHECKED: u8 = 1;
/// Bytes of the checksum at the end of a version 2 or 3 record.
const CHECKSUM_BYTES: usize = 4;

/// A record the codec cannot read or trust: damage, another program's bytes, or a future
/// version. Each message completes "the sample at TIME: …".
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error(
        "its format version {0} is unknown: the record is damaged, or a newer internet-monitor wrote it"
    )]
    UnknownVersion(u8),
    #[error("its record is truncated or malformed")]
    Malformed,
    #[error("it refers to dictionary entry {0}, which does not exist")]
    MissingDictionaryEntry(u64),
    #[error(
        "its checksum does not match its time, record and server/ISP/engine entries: something changed it after it was written"
    )]
    Checksum,
    /// A plan version's checksum covers only its time and record (no dictionary entries).
    #[error(
        "its checksum does not match its time and record: something changed it after it was written"
    )]
    RecordChecksum,
}

/// `record` (its version byte first) followed by its [`checksum`] at key `millis` (no
/// dictionary entries), 4 bytes little-endian: the layout of the `plans_v1` and
/// `campaigns_v1` records, so a changed byte, or a record moved to another key, is detected.
pub(super) fn seal(millis: u64, mut record: Vec<u8>) -> Vec<u8> {
    let sum = checksum(millis, &record, []);
    record.extend_from_slice(&sum.to_le_bytes());
    record
}

/// The fields of a record [`seal`]ed at key `millis` with version byte `version`: the bytes
/// between the version byte and the checksum. [`DecodeError::UnknownVersion`] for another
/// version, [`DecodeError::RecordChecksum`] when the checksum does not match,
/// [`DecodeError::Malformed`] when the record is too short to hold both.
pub(super) fn unseal(millis: u64, bytes: &[u8], version: u8) -> Result<&[u8], DecodeError> {
    match bytes.first() {
        Some(&first) if first == version => {}
        Some(&other) => return Err(DecodeError::UnknownVersion(other)),
        None => return Err(DecodeError::Malformed),
    }
    let split = bytes
        .len()
        .checked_sub(CHECKSUM_BYTES)
        .filter(|&at| at > 0)
        .ok_or(DecodeError::Malformed)?;
    let (record, stored) = bytes.split_at(split);
    let stored: [u8; CHECKSUM_BYTES] = stored.try_into().map_err(|_| DecodeError::Malformed)?;
    if checksum(millis, record, []) != u32::from_le_bytes(stored) {
        return Err(DecodeError::RecordChecksum);
    }
    Ok(&record[1..])
}

/// The checksum of a version 2 or 3 record: CRC-32 of the key (ms, little-endian), the record
/// before the checksum, and each dictionary entry it refers to (length-prefixed), in order.
pub(super) fn checksum<'a>(
    millis: u64,
    record: &[u8],
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&millis.to_le_bytes());
    hasher.update(record);
    for entry in entries {
        hasher.update(&(entry.len() as u64).to_le_bytes());
        hasher.update(entry);
    }
    hasher.finalize()
}

/// Field bits of the presence mask, in the order the fields are written.
mod bit {
    pub(super) const DURATION: u32 = 1 << 0;
    pub(super) const DOWNLOAD: u32 = 1 << 1;
    pub(super) const UPLOAD: u32 = 1 << 2;
    pub(super) const PING: u32 = 1 << 3;
    pub(super) const JITTER: u32 = 1 << 4;
    pub(super) const LOSS: u32 = 1 << 5;
    pub(super) const DOWNLOAD_LATENCY: u32 = 1 << 6;
    pub(super) const UPLOAD_LATENCY: u32 = 1 << 7;
    pub(super) const DOWNLOADED: u32 = 1 << 8;
    pub(super) const UPLOADED: u32 = 1 << 9;
    pub(super) const REASON: u32 = 1 << 10;
    pub(super) const MESSAGE: u32 = 1 << 11;
    pub(super) const SERVER: u32 = 1 << 12;
    pub(super) const ISP: u32 = 1 << 13;
    pub(super) const RESULT_URL: u32 = 1 << 14;
    pub(super) const CLIENT: u32 = 1 << 15;
    /// Version 3 only.
    pub(super) const ENGINE: u32 = 1 << 16;
}

/// Units in which the figures are usually whole numbers.
const PER_SECOND: f64 = 1.0;
const MICROS: f64 = 1e6;
pub(super) const MILLIS: f64 = 1e3;

const OOKLA_RESULT_PREFIX: &str = "https://www.speedtest.net/result/c/";
const URL_RAW: u8 = 0;
const URL_OOKLA_UUID: u8 = 1;

/// Where a record says the sample before it lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// A version 1 record: it does not say.
    Unknown,
    /// No sample before it.
    First,
    /// The sample before it has this key (ms).
    After(u64),
}

/// References into the dictionary, resolved by the store before encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct DictionaryRefs {
    pub server: Option<u64>,
    pub isp: Option<u64>,
    /// Always `None` in a version 1 or 2 record.
    pub engine: Option<u64>,
}

impl DictionaryRefs {
    /// The entry numbers referred to, in the order the record and its checksum take them.
    pub(super) fn iter(self) -> impl Iterator<Item = u64> {
        [self.server, self.isp, self.engine].into_iter().flatten()
    }
}

/// The record of `sample` (version 3), which follows the sample with the key `previous`, and
/// whose server, ISP and engine are the dictionary entries `refs` with the stored bytes
/// `entries` (in that order, those present), which the checksum covers.
pub(super) fn encode(
    sample: &Sample,
    previous: Option<u64>,
    refs: DictionaryRefs,
    entries: &[&[u8]],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(if sample.trigger == Trigger::Campaign {
        VERSION_CAMPAIGN
    } else {
        VERSION
    });
    out.push(outcome_code(sample.outcome) | trigger_code(sample.trigger) << 2);
    put_link(&mut out, sample.time.as_millis(), previous);
    let floats = [
        (bit::DURATION, sample.duration_seconds, MILLIS),
        (bit::DOWNLOAD, sample.download_bytes_per_second, PER_SECOND),
        (bit::UPLOAD, sample.upload_bytes_per_second, PER_SECOND),
        (bit::PING, sample.ping_seconds, MICROS),
        (bit::JITTER, sample.jitter_seconds, MICROS),
        (bit::LOSS, sample.packet_loss_ratio, MICROS),
        (
            bit::DOWNLOAD_LATENCY,
            sample.download_latency_seconds,
            MICROS,
        ),
        (bit::UPLOAD_LATENCY, sample.upload_latency_seconds, MICROS),
    ];
    let mut presence = 0;
    for (flag, value, _) in floats {
        presence |= if value.is_some() { flag } else { 0 };
    }
    let optional = [
        (bit::DOWNLOADED, sample.downloaded_bytes.is_some()),
        (bit::UPLOADED, sample.uploaded_bytes.is_some()),
        (bit::REASON, sample.reason.is_some()),
        (bit::MESSAGE, sample.message.is_some()),
        (bit::SERVER, refs.server.is_some()),
        (bit::ISP, refs.isp.is_some()),
        (bit::RESULT_URL, sample.result_url.is_some()),
        (bit::CLIENT, sample.client.is_some()),
        (bit::ENGINE, refs.engine.is_some()),
    ];
    for (flag, present) in optional {
        presence |= if present { flag } else { 0 };
    }
    put_varint(&mut out, u64::from(presence));
    for value in floats
        .iter()
        .filter_map(|(_, value, unit)| value.map(|v| (v, *unit)))
    {
        put_float(&mut out, value.0, value.1);
    }
    for value in [sample.downloaded_bytes, sample.uploaded_bytes]
        .into_iter()
        .flatten()
    {
        put_varint(&mut out, value);
    }
    if let Some(reason) = sample.reason {
        out.push(reason_code(reason));
    }
    if let Some(message) = &sample.message {
        put_str(&mut out, message);
    }
    for reference in refs.iter() {
        put_varint(&mut out, reference);
    }
    if let Some(url) = &sample.result_url {
        put_result_url(&mut out, url);
    }
    if let Some(client) = &sample.client {
        for part in [&client.internal_ip, &client.external_ip, &client.mac] {
            put_optional_str(&mut out, part.as_deref());
        }
    }
    let sum = checksum(sample.time.as_millis(), &out, entries.iter().copied());
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A decoded record whose dictionary references the store still has to resolve, and whose
/// checksum it still has to verify with them.
pub(super) struct Decoded<'a> {
    pub sample: Sample,
    pub refs: DictionaryRefs,
    /// Version 2 or 3: the bytes the checksum covers (with the entries) and the checksum
    /// stored. `None` for a version 1 record, which has none.
    pub seal: Option<(&'a [u8], u32)>,
    pub link: Link,
}

/// Reads a record; the caller verifies [`Decoded::seal`] once it has the entries.
pub(super) fn decode(time: Timestamp, bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let version = bytes.first().copied();
    let (body, seal) = match version {
        Some(VERSION_CAMPAIGN | VERSION | VERSION_WITHOUT_ENGINE) => {
            let split = bytes
                .len()
                .checked_sub(CHECKSUM_BYTES)
                .ok_or(DecodeError::Malformed)?;
            let (body, sum) = bytes.split_at(split);
            let sum: [u8; CHECKSUM_BYTES] = sum.try_into().map_err(|_| DecodeError::Malformed)?;
            (body, Some((body, u32::from_le_bytes(sum))))
        }
        Some(VERSION_UNCHECKED) => (bytes, None),
        Some(other) => return Err(DecodeError::UnknownVersion(other)),
        None => return Err(DecodeError::Malformed),
    };
    let mut input = Reader(body);
    input.byte()?;
    let kind = input.byte()?;
    let outcome = outcome_from(kind & 0b11)?;
    let trigger = trigger_from(kind >> 2 & 0b11)?;
    // Each version holds campaign runs and nothing else, or none.
    if (trigger == Trigger::Campaign) != (version == Some(VERSION_CAMPAIGN)) {
        return Err(DecodeError::Malformed);
    }
    let link = match seal {
        None => Link::Unknown,
        Some(_) => match input.varint()? {
            0 => Link::First,
            gap => Link::After(
                time.as_millis()
                    .checked_sub(gap)
                    .ok_or(DecodeError::Malformed)?,
            ),
        },
    };
    let presence = u32::try_from(input.varint()?).map_err(|_| DecodeError::Malformed)?;
    let has = |flag: u32| presence & flag != 0;
    let with_engine = matches!(version, Some(VERSION | VERSION_CAMPAIGN));
    if (!with_engine && has(bit::ENGINE)) || presence >= bit::ENGINE << 1 {
        return Err(DecodeError::Malformed);
    }
    let mut float = |flag: u32, unit: f64| -> Result<Option<f64>, DecodeError> {
        if has(flag) {
            input.float(unit).map(Some)
        } else {
            Ok(None)
        }
    };
    let mut sample = Sample {
        outcome,
        duration_seconds: float(bit::DURATION, MILLIS)?,
        download_bytes_per_second: float(bit::DOWNLOAD, PER_SECOND)?,
        upload_bytes_per_second: float(bit::UPLOAD, PER_SECOND)?,
        ping_seconds: float(bit::PING, MICROS)?,
        jitter_seconds: float(bit::JITTER, MICROS)?,
        packet_loss_ratio: float(bit::LOSS, MICROS)?,
        download_latency_seconds: float(bit::DOWNLOAD_LATENCY, MICROS)?,
        upload_latency_seconds: float(bit::UPLOAD_LATENCY, MICROS)?,
        ..Sample::empty(time, trigger)
    };
    if has(bit::DOWNLOADED) {
        sample.downloaded_bytes = Some(input.varint()?);
    }
    if has(bit::UPLOADED) {
        sample.uploaded_bytes = Some(input.varint()?);
    }
    if has(bit::REASON) {
        sample.reason = Some(reason_from(input.byte()?)?);
    }
    if has(bit::MESSAGE) {
        sample.message = Some(input.string()?);
    }
    let refs = DictionaryRefs {
        server: has(bit::SERVER).then(|| input.varint()).transpose()?,
        isp: has(bit::ISP).then(|| input.varint()).transpose()?,
        engine: has(bit::ENGINE).then(|| input.varint()).transpose()?,
    };
    if !with_engine {
        sample.engine = Engine::before_engines(outcome);
    }
    if has(bit::RESULT_URL) {
        sample.result_url = Some(input.result_url()?);
    }
    if has(bit::CLIENT) {
        sample.client = Some(Client {
            internal_ip: input.optional_string()?,
            external_ip: input.optional_string()?,
            mac: input.optional_string()?,
        });
    }
    if !input.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(Decoded {
        sample,
        refs,
        seal,
        link,
    })
}

/// The version 2 or 3 record `bytes` of the sample at `millis`, now following `previous`: the
/// same version and fields, and a new checksum. `entries` are the bytes of the dictionary entries it refers to;
/// its checksum is verified first, so that damage is never sealed in. `None` for a version 1
/// record, which has no link to change.
pub(super) fn relink(
    millis: u64,
    bytes: &[u8],
    previous: Option<u64>,
    entries: &[&[u8]],
) -> Result<Option<Vec<u8>>, DecodeError> {
    let decoded = decode(Timestamp::from_millis(millis), bytes)?;
    let Some((body, stored)) = decoded.seal else {
        return Ok(None);
    };
    if checksum(millis, body, entries.iter().copied()) != stored {
        return Err(DecodeError::Checksum);
    }
    let mut input = Reader(body);
    let head = input.take(2)?.to_vec();
    input.varint()?;
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&head);
    put_link(&mut out, millis, previous);
    out.extend_from_slice(input.0);
    let sum = checksum(millis, &out, entries.iter().copied());
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(Some(out))
}

/// The gap to the previous sample in ms, 0 when there is none (keys are distinct, so a real gap
/// is never 0).
fn put_link(out: &mut Vec<u8>, millis: u64, previous: Option<u64>) {
    put_varint(
        out,
        previous.map_or(0, |previous| millis.saturating_sub(previous).max(1)),
    );
}

fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Skipped => 2,
    }
}

fn outcome_from(code: u8) -> Result<Outcome, DecodeError> {
    [Outcome::Success, Outcome::Failure, Outcome::Skipped]
        .into_iter()
        .find(|o| outcome_code(*o) == code)
        .ok_or(DecodeError::Malformed)
}

fn trigger_code(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::Schedule => 0,
        Trigger::Manual => 1,
        Trigger::Retest => 2,
        Trigger::Campaign => 3,
    }
}

fn trigger_from(code: u8) -> Result<Trigger, DecodeError> {
    [
        Trigger::Schedule,
        Trigger::Manual,
        Trigger::Retest,
        Trigger::Campaign,
    ]
    .into_iter()
    .find(|t| trigger_code(*t) == code)
    .ok_or(DecodeError::Malformed)
}

/// Stable codes: the position in `FailureReason::ALL`, which only ever grows at the end.
fn reason_code(reason: FailureReason) -> u8 {
    FailureReason::ALL
        .iter()
        .position(|r| *r == reason)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(u8::MAX)
}

fn reason_from(code: u8) -> Result<FailureReason, DecodeError> {
    FailureReason::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(DecodeError::Malformed)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Largest count of units stored as a varint; beyond it `f64` is no longer exact per unit.
const EXACT_LIMIT: f64 = (1u64 << 52) as f64;

/// An even varint `2n` means `n` units; the odd varint `1` means 8 raw little-endian bytes follow.
pub(super) fn put_float(out: &mut Vec<u8>, value: f64, unit: f64) {
    let units = (value * unit).round();
    // Compared with what decoding will compute, so -0.0 and near misses take the raw path.
    let exact = (0.0..EXACT_LIMIT).contains(&units)
        && ((units as u64) as f64 / unit).to_bits() == value.to_bits();
    if exact {
        put_varint(out, (units as u64) << 1);
    } else {
        put_varint(out, 1);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

pub(super) fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

pub(super) fn put_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            out.push(1);
            put_str(out, text);
        }
        None => out.push(0),
    }
}

fn put_result_url(out: &mut Vec<u8>, url: &str) {
    match url.strip_prefix(OOKLA_RESULT_PREFIX).and_then(parse_uuid) {
        Some(uuid) => {
            out.push(URL_OOKLA_UUID);
            out.extend_from_slice(&uuid);
        }
        None => {
            out.push(URL_RAW);
            put_str(out, url);
        }
    }
}

/// The 16 bytes of a lower-case hyphenated UUID, only if formatting them gives `text` back.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.split('-').collect();
    if text.len() != 36 || hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut canonical = String::with_capacity(36);
    push_uuid(&mut canonical, &bytes);
    (canonical == text).then_some(bytes)
}

/// Appends the hyphenated lower-case form of a UUID. Digit by digit rather than with
/// `format!`: every sample read from the store goes through here.
fn push_uuid(text: &mut String, bytes: &[u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// A cursor over a record's bytes; every read fails cleanly at the end of input.
pub(super) struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.0.split_first().ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(first)
    }

    fn take(&mut self, len: usize) -> Result<&[u8], DecodeError> {
        let (head, rest) = self.0.split_at_checked(len).ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed)
    }

    pub(super) fn float(&mut self, unit: f64) -> Result<f64, DecodeError> {
        let tag = self.varint()?;
        if tag & 1 == 0 {
            return Ok((tag >> 1) as f64 / unit);
        }
        let raw = self.take(8)?;
        let raw: [u8; 8] = raw.try_into().map_err(|_| DecodeError::Malformed)?;
        Ok(f64::from_le_bytes(raw))
    }

    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Malformed)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed)
    }

    pub(super) fn optional_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err(DecodeError::Malformed),
        }
    }

    fn result_url(&mut self) -> Result<String, DecodeError> {
        match self.byte()? {
            URL_RAW => self.string(),
            URL_OOKLA_UUID => {
                let raw: [u8; 16] = self
                    .take(16)?
                    .try_into()
                    .map_err(|_| DecodeError::Malformed)?;
                let mut url = String::with_capacity(OOKLA_RESULT_PREFIX.len() + 36);
                url.push_str(OOKLA_RESULT_PREFIX);
                push_uuid(&mut url, &raw);
                Ok(url)
            }
            _ => Err(DecodeError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests;
