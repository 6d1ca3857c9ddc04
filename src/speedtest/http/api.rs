//! The two speed-test APIs as request paths, and how the engine tells which one a server
//! speaks; free of I/O.

use crate::sample::HttpProtocol;

/// The largest Cloudflare download request, in bytes: speed.cloudflare.com refuses 100 MB and
/// more with 403.
pub(crate) const CLOUDFLARE_MAX_DOWNLOAD: u64 = 50_000_000;
/// The largest LibreSpeed download request, in MiB chunks (`ckSize`): LibreSpeed's back ends cap
/// it at 1024; 64 keeps one request from outliving a slow line's test.
pub(crate) const LIBRESPEED_MAX_CHUNKS: u64 = 64;
/// The largest upload request body, in bytes.
pub(crate) const MAX_UPLOAD: u64 = 25_000_000;
/// The smallest download or upload request, in bytes.
pub(crate) const MIN_REQUEST: u64 = 100_000;

const MIB: u64 = 1 << 20;

/// An API as spoken by one server: the protocol, and for LibreSpeed whether its paths end in
/// `.php` (the PHP back end) or not (the Go and Rust ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Api {
    /// Which of the two APIs.
    pub(crate) protocol: HttpProtocol,
    /// LibreSpeed paths end in `.php`.
    pub(crate) php: bool,
}

impl Api {
    /// The path and query (appended to the base URL's path) of a download of about `bytes`:
    /// Cloudflare takes a byte count, LibreSpeed whole MiB chunks, rounded up.
    pub(crate) fn download(&self, bytes: u64) -> String {
        match self.protocol {
            HttpProtocol::Cloudflare => format!("/__down?bytes={bytes}"),
            HttpProtocol::Librespeed => {
                format!("/garbage{}?ckSize={}", self.suffix(), self.chunks(bytes))
            }
        }
    }

    /// The bytes a download of about `bytes` asks for.
    pub(crate) fn download_size(&self, bytes: u64) -> u64 {
        match self.protocol {
            HttpProtocol::Cloudflare => bytes,
            HttpProtocol::Librespeed => self.chunks(bytes) * MIB,
        }
    }

    /// The most one download request may ask for, in bytes.
    pub(crate) fn max_download(&self) -> u64 {
        match self.protocol {
            HttpProtocol::Cloudflare => CLOUDFLARE_MAX_DOWNLOAD,
            HttpProtocol::Librespeed => LIBRESPEED_MAX_CHUNKS * MIB,
        }
    }

    /// The path of an upload (`POST`).
    pub(crate) fn upload(&self) -> String {
        match self.protocol {
            HttpProtocol::Cloudflare => "/__up".to_owned(),
            HttpProtocol::Librespeed => format!("/empty{}", self.suffix()),
        }
    }

    /// The path of a latency probe (`GET`, an empty answer).
    pub(crate) fn latency(&self) -> String {
        match self.protocol {
            HttpProtocol::Cloudflare => "/__down?bytes=0".to_owned(),
            HttpProtocol::Librespeed => format!("/empty{}", self.suffix()),
        }
    }

    /// The path that tells the client's address and ISP (LibreSpeed only; Cloudflare says it
    /// in headers of every answer).
    pub(crate) fn get_ip(&self) -> Option<String> {
        match self.protocol {
            HttpProtocol::Cloudflare => None,
            HttpProtocol::Librespeed => Some(format!("/getIP{}?isp=true", self.suffix())),
        }
    }

    fn suffix(&self) -> &'static str {
        if self.php { ".php" } else { "" }
    }

    fn chunks(&self, bytes: u64) -> u64 {
        bytes.div_ceil(MIB).clamp(1, LIBRESPEED_MAX_CHUNKS)
    }
}

/// `base` (no trailing slash, as `--http-server` keeps it) and an API path: the path and query
/// of the request line. `https://host` + `/__up` is `/__up`; `http://host/speed` + `/empty`
/// is `/speed/empty`.
pub(crate) fn request_target(base_path: &str, path: &str) -> String {
    let base = base_path.trim_end_matches('/');
    format!("{base}{path}")
}

/// A request sent to tell the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `GET /__down?bytes=0`: a Cloudflare-style server answers 200.
    Cloudflare,
    /// `GET /empty`: LibreSpeed's Go and Rust back ends.
    Librespeed,
    /// `GET /empty.php`: LibreSpeed's PHP back end.
    LibrespeedPhp,
}

impl Probe {
    /// The path the probe requests.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Probe::Cloudflare => "/__down?bytes=0",
            Probe::Librespeed => "/empty",
            Probe::LibrespeedPhp => "/empty.php",
        }
    }

    /// The API a successful answer shows.
    fn api(self) -> Api {
        match self {
            Probe::Cloudflare => Api {
                protocol: HttpProtocol::Cloudflare,
                php: false,
            },
            Probe::Librespeed => Api {
                protocol: HttpProtocol::Librespeed,
                php: false,
            },
            Probe::LibrespeedPhp => Api {
                protocol: HttpProtocol::Librespeed,
                php: true,
            },
        }
    }
}

/// What to do next while telling the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this probe.
    Send(Probe),
    /// The server speaks this API.
    Found(Api),
    /// Every probe was refused: the server speaks neither API (as asked).
    Neither,
}

/// The next step of telling the API, given the protocol asked for (`None`: any) and the
/// probes answered so far (`true`: a 2xx answer). Cloudflare is fixed when asked for (its
/// paths have no variants); otherwise the probes go Cloudflare, then LibreSpeed without and
/// with `.php`, and the first one answered decides.
pub(crate) fn detect(wanted: Option<HttpProtocol>, answered: &[(Probe, bool)]) -> Step {
    let order: &[Probe] = match wanted {
        Some(HttpProtocol::Cloudflare) => {
            return Step::Found(Probe::Cloudflare.api());
        }
        Some(HttpProtocol::Librespeed) => &[Probe::Librespeed, Probe::LibrespeedPhp],
        None => &[Probe::Cloudflare, Probe::Librespeed, Probe::LibrespeedPhp],
    };
    if let Some((probe, _)) = answered.iter().find(|(_, ok)| *ok) {
        return Step::Found(probe.api());
    }
    match order
        .iter()
        .find(|probe| !answered.iter().any(|(done, _)| done == *probe))
    {
        Some(probe) => Step::Send(*probe),
        None => Step::Neither,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF: Api = Api {
        protocol: HttpProtocol::Cloudflare,
        php: false,
    };
    const LS: Api = Api {
        protocol: HttpProtocol::Librespeed,
        php: false,
    };
    const LS_PHP: Api = Api {
        protocol: HttpProtocol::Librespeed,
        php: true,
    };

    #[test]
    fn paths_of_each_api() {
        assert_eq!(CF.download(12_345), "/__down?bytes=12345");
        assert_eq!(CF.upload(), "/__up");
        assert_eq!(CF.latency(), "/__down?bytes=0");
        assert_eq!(CF.get_ip(), None);
        assert_eq!(LS.download(1), "/garbage?ckSize=1");
        assert_eq!(LS.download(3 * MIB + 1), "/garbage?ckSize=4");
        assert_eq!(LS.download_size(3 * MIB + 1), 4 * MIB);
        assert_eq!(LS.download(u64::MAX), "/garbage?ckSize=64");
        assert_eq!(LS_PHP.download(MIB), "/garbage.php?ckSize=1");
        assert_eq!(LS.upload(), "/empty");
        assert_eq!(LS_PHP.upload(), "/empty.php");
        assert_eq!(LS_PHP.latency(), "/empty.php");
        assert_eq!(LS.get_ip().as_deref(), Some("/getIP?isp=true"));
        assert_eq!(LS_PHP.get_ip().as_deref(), Some("/getIP.php?isp=true"));
        assert_eq!(CF.max_download(), CLOUDFLARE_MAX_DOWNLOAD);
        assert_eq!(LS.max_download(), 64 * MIB);
    }

    #[test]
    fn request_targets_join_the_base_path() {
        assert_eq!(request_target("", "/__up"), "/__up");
        assert_eq!(request_target("/", "/__up"), "/__up");
        assert_eq!(request_target("/speed", "/empty"), "/speed/empty");
        assert_eq!(
            request_target("/a/b/", "/getIP?isp=true"),
            "/a/b/getIP?isp=true"
        );
    }

    #[test]
    fn detection_decisions() {
        use Probe::*;
        // Asked for Cloudflare: nothing to probe.
        assert_eq!(detect(Some(HttpProtocol::Cloudflare), &[]), Step::Found(CF));
        // Asked for LibreSpeed: which paths.
        let ls = Some(HttpProtocol::Librespeed);
        assert_eq!(detect(ls, &[]), Step::Send(Librespeed));
        assert_eq!(detect(ls, &[(Librespeed, true)]), Step::Found(LS));
        assert_eq!(
            detect(ls, &[(Librespeed, false)]),
            Step::Send(LibrespeedPhp)
        );
        assert_eq!(
            detect(ls, &[(Librespeed, false), (LibrespeedPhp, true)]),
            Step::Found(LS_PHP)
        );
        assert_eq!(
            detect(ls, &[(Librespeed, false), (LibrespeedPhp, false)]),
            Step::Neither
        );
        // Not asked: Cloudflare first, then LibreSpeed.
        assert_eq!(detect(None, &[]), Step::Send(Cloudflare));
        assert_eq!(detect(None, &[(Cloudflare, true)]), Step::Found(CF));
        assert_eq!(detect(None, &[(Cloudflare, false)]), Step::Send(Librespeed));
        assert_eq!(
            detect(None, &[(Cloudflare, false), (Librespeed, false)]),
            Step::Send(LibrespeedPhp)
        );
        assert_eq!(
            detect(
                None,
                &[
                    (Cloudflare, false),
                    (Librespeed, false),
                    (LibrespeedPhp, true)
                ]
            ),
            Step::Found(LS_PHP)
        );
        assert_eq!(
            detect(
                None,
                &[
                    (Cloudflare, false),
                    (Librespeed, false),
                    (LibrespeedPhp, false)
                ]
            ),
            Step::Neither
        );
    }
}
