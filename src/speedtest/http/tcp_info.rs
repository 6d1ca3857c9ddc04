//! Bytes of a TCP connection the peer has acknowledged, from the kernel (Linux `TCP_INFO`):
//! what an upload really delivered, where bytes written only fill the socket buffer.

use std::os::fd::{AsFd, OwnedFd};

/// A handle on a connection's socket (a duplicate of its descriptor, closed when dropped) from
/// which its acknowledged byte count can be read while the connection is in use elsewhere.
#[derive(Debug)]
pub(crate) struct Acked {
    fd: OwnedFd,
}

impl Acked {
    /// A handle on `socket`'s connection; `None` where the kernel does not report acknowledged
    /// bytes (not Linux, a kernel before 4.1) or the descriptor cannot be duplicated.
    pub(crate) fn of(socket: &impl AsFd) -> Option<Acked> {
        let fd = socket.as_fd().try_clone_to_owned().ok()?;
        let acked = Acked { fd };
        acked.bytes().map(|_| acked)
    }

    /// Bytes sent on the connection and acknowledged by the peer so far (`tcpi_bytes_acked`);
    /// `None` when the kernel does not say.
    #[cfg(target_os = "linux")]
    pub(crate) fn bytes(&self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        // `struct tcp_info` (linux/tcp.h) as far as `tcpi_bytes_received`: 8 one-byte fields,
        // 24 `__u32`s (tcpi_rto … tcpi_total_retrans), then the `__u64`s tcpi_pacing_rate,
        // tcpi_max_pacing_rate, tcpi_bytes_acked (byte offset 120) and tcpi_bytes_received.
        // The libc crate does not define the struct, so it is read as 8-byte words.
        const WORDS: usize = 17;
        const BYTES_ACKED: usize = 15;
        let mut info = [0u64; WORDS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` is a writable buffer of `len` bytes, aligned for any field of
        // tcp_info; the kernel writes at most `len` bytes and stores the length it wrote.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = (BYTES_ACKED + 1) * std::mem::size_of::<u64>();
        if rc != 0 || (len as usize) < needed {
            return None;
        }
        Some(info[BYTES_ACKED])
    }

    /// Bytes sent on the connection and acknowledged by the peer so far; never known here.
    #[cfg(not(target_os = "linux"))]
    pub fn bytes(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn counts_what_the_peer_acknowledged() {
        use super::*;
        use std::io::{Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let acked = Acked::of(&client).expect("Linux reports tcpi_bytes_acked");
        let before = acked.bytes().unwrap();
        client.write_all(&[7u8; 100_000]).unwrap();
        let mut got = vec![0u8; 100_000];
        server.read_exact(&mut got).unwrap();
        // The peer has read it all, so it has acknowledged it all (loopback ACKs at once, but
        // give it a moment anyway).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while acked.bytes().unwrap() - before < 100_000 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(acked.bytes().unwrap() - before, 100_000);
    }
}
