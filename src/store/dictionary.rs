//! Server, ISP and engine records that many samples share, stored once and referred to by
//! number.
//!
//! An entry is a tag byte and its fields. Engine (tag 3, since format version 3): the engine's
//! code (0 `ookla`, 1 `http`), a presence byte (bit 0 protocol, 1 URL, 2 streams, 3 duration,
//! 4 ramp-up), then those present in that order: the protocol's code (0 `cloudflare`,
//! 1 `librespeed`), the URL (length-prefixed), streams (varint), duration and ramp-up (seconds,
//! as the sample codec stores floats: exact).

use std::sync::Arc;

use redb::{ReadableTable, Table};

use super::codec::{
    DecodeError, DictionaryRefs, MILLIS, Reader, put_float, put_optional_str, put_str, put_varint,
};
use crate::sample::{Engine, EngineName, HttpProtocol, Sample, Server};

const SERVER: u8 = 1;
const ISP: u8 = 2;
const ENGINE: u8 = 3;

/// Presence bits of an engine entry's optional fields, in the order they are written.
mod engine_bit {
    pub(super) const PROTOCOL: u8 = 1 << 0;
    pub(super) const URL: u8 = 1 << 1;
    pub(super) const STREAMS: u8 = 1 << 2;
    pub(super) const DURATION: u8 = 1 << 3;
    pub(super) const RAMP_UP: u8 = 1 << 4;
    pub(super) const ALL: u8 = (1 << 5) - 1;
}

#[derive(Clone, Debug)]
pub(super) enum Entry {
    Server(Arc<Server>),
    Isp(Arc<str>),
    Engine(Arc<Engine>),
}

impl Entry {
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut input = Reader(bytes);
        let entry = match input.byte()? {
            SERVER => {
                let id = match input.byte()? {
                    0 => None,
                    1 => Some(input.varint()?),
                    _ => return Err(DecodeError::Malformed),
                };
                Entry::Server(Arc::new(Server {
                    id,
                    name: input.optional_string()?,
                    location: input.optional_string()?,
                    country: input.optional_string()?,
                    host: input.optional_string()?,
                }))
            }
            ISP => Entry::Isp(Arc::from(input.string()?)),
            ENGINE => Entry::Engine(Arc::new(decode_engine(&mut input)?)),
            _ => return Err(DecodeError::Malformed),
        };
        if input.0.is_empty() {
            Ok(entry)
        } else {
            Err(DecodeError::Malformed)
        }
    }

    /// The server of a server entry; `Malformed` for another kind of entry.
    pub(super) fn server(self) -> Result<Arc<Server>, DecodeError> {
        match self {
            Entry::Server(server) => Ok(server),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// The ISP of an ISP entry; `Malformed` for another kind of entry.
    pub(super) fn isp(self) -> Result<Arc<str>, DecodeError> {
        match self {
            Entry::Isp(isp) => Ok(isp),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// The engine of an engine entry; `Malformed` for another kind of entry.
    pub(super) fn engine(self) -> Result<Arc<Engine>, DecodeError> {
        match self {
            Entry::Engine(engine) => Ok(engine),
            _ => Err(DecodeError::Malformed),
        }
    }
}

fn decode_engine(input: &mut Reader<'_>) -> Result<Engine, DecodeError> {
    let name = match input.byte()? {
        0 => EngineName::Ookla,
        1 => EngineName::Http,
        _ => return Err(DecodeError::Malformed),
    };
    let presence = input.byte()?;
    if presence & !engine_bit::ALL != 0 {
        return Err(DecodeError::Malformed);
    }
    let has = |bit: u8| presence & bit != 0;
    let protocol = if has(engine_bit::PROTOCOL) {
        Some(match input.byte()? {
            0 => HttpProtocol::Cloudflare,
            1 => HttpProtocol::Librespeed,
            _ => return Err(DecodeError::Malformed),
        })
    } else {
        None
    };
    let url = has(engine_bit::URL).then(|| input.string()).transpose()?;
    let streams = if has(engine_bit::STREAMS) {
        Some(u32::try_from(input.varint()?).map_err(|_| DecodeError::Malformed)?)
    } else {
        None
    };
    let duration_seconds = has(engine_bit::DURATION)
        .then(|| input.float(MILLIS))
        .transpose()?;
    let ramp_up_seconds = has(engine_bit::RAMP_UP)
        .then(|| input.float(MILLIS))
        .transpose()?;
    Ok(Engine {
        name,
        protocol,
        url,
        streams,
        duration_seconds,
        ramp_up_seconds,
    })
}

fn encode_engine(engine: &Engine) -> Vec<u8> {
    let mut out = vec![
        ENGINE,
        match engine.name {
            EngineName::Ookla => 0,
            EngineName::Http => 1,
        },
    ];
    let present = [
        (engine_bit::PROTOCOL, engine.protocol.is_some()),
        (engine_bit::URL, engine.url.is_some()),
        (engine_bit::STREAMS, engine.streams.is_some()),
        (engine_bit::DURATION, engine.duration_seconds.is_some()),
        (engine_bit::RAMP_UP, engine.ramp_up_seconds.is_some()),
    ];
    out.push(
        present
            .into_iter()
            .fold(0, |mask, (bit, is)| if is { mask | bit } else { mask }),
    );
    if let Some(protocol) = engine.protocol {
        out.push(match protocol {
            HttpProtocol::Cloudflare => 0,
            HttpProtocol::Librespeed => 1,
        });
    }
    if let Some(url) = &engine.url {
        put_str(&mut out, url);
    }
    if let Some(streams) = engine.streams {
        put_varint(&mut out, u64::from(streams));
    }
    for seconds in [engine.duration_seconds, engine.ramp_up_seconds]
        .into_iter()
        .flatten()
    {
        put_float(&mut out, seconds, MILLIS);
    }
    out
}

fn encode_server(server: &Server) -> Vec<u8> {
    let mut out = vec![SERVER];
    match server.id {
        Some(id) => {
            out.push(1);
            put_varint(&mut out, id);
        }
        None => out.push(0),
    }
    for part in [
        &server.name,
        &server.location,
        &server.country,
        &server.host,
    ] {
        put_optional_str(&mut out, part.as_deref());
    }
    out
}

fn encode_isp(isp: &str) -> Vec<u8> {
    let mut out = vec![ISP];
    put_str(&mut out, isp);
    out
}

/// A sample's references into the dictionary, with the bytes of those entries (server, ISP,
/// engine: those present, in that order), which the sample's checksum covers.
pub(super) struct Interned {
    pub refs: DictionaryRefs,
    pub entries: Vec<Vec<u8>>,
}

/// The numbers of the sample's server, ISP and engine records, adding them if new.
pub(super) fn intern(
    entries: &mut Table<u64, &'static [u8]>,
    index: &mut Table<&'static [u8], u64>,
    sample: &Sample,
) -> Result<Interned, redb::Error> {
    let mut bytes = Vec::with_capacity(3);
    let mut number_of = |entry: Vec<u8>| -> Result<u64, redb::Error> {
        let known = index.get(entry.as_slice())?.map(|number| number.value());
        // The index is a shortcut, trusted only when the entry it names holds these bytes: a
        // damaged index must not make a new sample refer to another server or ISP.
        let number = match known {
            Some(number)
                if entries
                    .get(number)?
                    .is_some_and(|stored| stored.value() == entry.as_slice()) =>
            {
                number
            }
            _ => {
                let number = entries
                    .last()?
                    .map_or(0, |(last, _)| last.value().saturating_add(1));
                entries.insert(number, entry.as_slice())?;
                index.insert(entry.as_slice(), number)?;
                number
            }
        };
        bytes.push(entry);
        Ok(number)
    };
    let refs = DictionaryRefs {
        server: sample
            .server
            .as_deref()
            .map(encode_server)
            .map(&mut number_of)
            .transpose()?,
        isp: sample
            .isp
            .as_deref()
            .map(encode_isp)
            .map(&mut number_of)
            .transpose()?,
        engine: sample
            .engine
            .as_deref()
            .map(encode_engine)
            .map(&mut number_of)
            .transpose()?,
    };
    Ok(Interned {
        refs,
        entries: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_round_trip_exactly() {
        let http = Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Librespeed),
            url: Some("https://speed.example/backend".into()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(0.1 + 0.2),
        };
        for engine in [Engine::ookla(), http] {
            let bytes = encode_engine(&engine);
            let back = Entry::decode(&bytes).unwrap().engine().unwrap();
            assert_eq!(*back, engine);
        }
        assert_eq!(encode_engine(&Engine::ookla()), [ENGINE, 0, 0]);
    }

    #[test]
    fn damaged_engine_entries_are_refused() {
        for bytes in [
            &[ENGINE][..],
            &[ENGINE, 2, 0],
            &[ENGINE, 0, 1 << 5],
            &[ENGINE, 1, engine_bit::PROTOCOL, 2],
            &[ENGINE, 1, engine_bit::STREAMS, 0x80],
            &[ENGINE, 0, 0, 0],
        ] {
            assert!(Entry::decode(bytes).is_err(), "{bytes:?}");
        }
        let isp = Entry::decode(&encode_isp("x")).unwrap();
        assert_eq!(isp.engine().err(), Some(DecodeError::Malformed));
    }
}
