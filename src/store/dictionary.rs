//! Server and ISP records that many samples share, stored once and referred to by number.

use std::sync::Arc;

use redb::{ReadableTable, Table};

use super::codec::{DecodeError, DictionaryRefs, Reader, put_optional_str, put_str, put_varint};
use crate::sample::{Sample, Server};

const SERVER: u8 = 1;
const ISP: u8 = 2;

#[derive(Clone, Debug)]
pub enum Entry {
    Server(Arc<Server>),
    Isp(Arc<str>),
}

impl Entry {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
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
            _ => return Err(DecodeError::Malformed),
        };
        if input.0.is_empty() {
            Ok(entry)
        } else {
            Err(DecodeError::Malformed)
        }
    }

    pub fn server(self) -> Result<Arc<Server>, DecodeError> {
        match self {
            Entry::Server(server) => Ok(server),
            Entry::Isp(_) => Err(DecodeError::Malformed),
        }
    }

    pub fn isp(self) -> Result<Arc<str>, DecodeError> {
        match self {
            Entry::Isp(isp) => Ok(isp),
            Entry::Server(_) => Err(DecodeError::Malformed),
        }
    }
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

/// A sample's references into the dictionary, with the bytes of those entries (server first),
/// which the sample's checksum covers.
pub struct Interned {
    pub refs: DictionaryRefs,
    pub entries: Vec<Vec<u8>>,
}

/// The numbers of the sample's server and ISP records, adding them if new.
pub fn intern(
    entries: &mut Table<u64, &'static [u8]>,
    index: &mut Table<&'static [u8], u64>,
    sample: &Sample,
) -> Result<Interned, redb::Error> {
    let mut bytes = Vec::with_capacity(2);
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
    };
    Ok(Interned {
        refs,
        entries: bytes,
    })
}
