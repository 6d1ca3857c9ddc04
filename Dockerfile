# syntax=docker/dockerfile:1
# internet-monitor with the official Ookla Speedtest CLI, on Debian slim, as a non-root user.
#
#   docker build -t internet-monitor .
#   docker run -d --name internet-monitor -p 5000:5000 -v internet-monitor:/data \
#     --read-only --tmpfs /tmp internet-monitor --plan-download 500Mbit/s --plan-upload 50Mbit/s
#
# Other architectures (BuildKit; linux/amd64, linux/arm64 and linux/arm/v7 have an Ookla build):
#   docker buildx build --platform linux/arm64 -t internet-monitor .
# Source revision in internet_monitor_build_info (the context has no .git, so build.rs cannot
# read it): --build-arg REVISION=$(git rev-parse --short=12 HEAD)

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: the release binary (same Debian release as the runtime, so the same glibc)
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# Cargo.toml declares the benchmarks, so cargo wants their files even to build the binary.
COPY benches ./benches
COPY src ./src
ARG REVISION=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    INTERNET_MONITOR_REVISION="$REVISION" cargo build --release --locked --bin internet-monitor \
 && install -D -m 0755 target/release/internet-monitor /out/internet-monitor

# ---- speedtest: the official Ookla Speedtest CLI for the target architecture
FROM ${RUNTIME_IMAGE} AS speedtest
ARG TARGETARCH
ARG TARGETVARIANT
ARG SPEEDTEST_VERSION=1.2.0
ARG SPEEDTEST_URL=https://install.speedtest.net/app/cli
# SHA-256 of ookla-speedtest-${SPEEDTEST_VERSION}-linux-<arch>.tgz from SPEEDTEST_URL, one per
# architecture. Ookla publishes no checksums: these are the values that several independent
# public packagings of 1.2.0 pin (a PKGBUILD, an OpenWrt package, install scripts). They were
# NOT downloaded and checked when written here (no network to install.speedtest.net). The
# build checks them with `sha256sum -c` and stops on a mismatch or an empty value, never
# installing an unverified binary. When bumping SPEEDTEST_VERSION, replace all three.
ARG SPEEDTEST_SHA256_X86_64=5690596c54ff9bed63fa3732f818a05dbc2db19ad36ed68f21ca5f64d5cfeeb7
ARG SPEEDTEST_SHA256_AARCH64=3953d231da3783e2bf8904b6dd72767c5c6e533e163d3742fd0437affa431bd3
ARG SPEEDTEST_SHA256_ARMHF=e45fcdebbd8a185553535533dd032d6b10bc8c64eee4139b1147b9c09835d08d
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 deploy/docker/install-speedtest.sh /usr/local/bin/install-speedtest
RUN install-speedtest /out

# ---- runtime
FROM ${RUNTIME_IMAGE}
# ca-certificates: the Speedtest CLI talks TLS; tini: PID 1 that forwards signals and reaps.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 internet-monitor \
 && useradd --system --uid 10001 --gid internet-monitor --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin internet-monitor \
 && install -d -o internet-monitor -g internet-monitor -m 0750 /data
COPY --from=speedtest /out/speedtest /usr/local/bin/speedtest
COPY --from=build /out/internet-monitor /usr/local/bin/internet-monitor
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/internet-monitor-healthcheck

# The exporter runs the CLI with --accept-license --accept-gdpr; the CLI records that under
# $HOME/.config/ookla, so HOME is the volume: with --read-only, /data is the one writable place.
ENV HOME=/data \
    INTERNET_MONITOR_DB=/data/internet-monitor.redb \
    INTERNET_MONITOR_LISTEN=0.0.0.0:5000 \
    INTERNET_MONITOR_SPEEDTEST_BIN=/usr/local/bin/speedtest
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/internet-monitor-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/internet-monitor"]
CMD ["serve"]
