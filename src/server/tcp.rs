//! TCP tuning for large responses. Linux autotunes a socket's send buffer up to
//! `net.ipv4.tcp_wmem` (4 MiB here) from the congestion window, which BBR keeps large even on
//! loopback. For a near peer that buys no throughput: the bandwidth-delay product of a path
//! under a millisecond is small. And on loopback the receiver's protocol work runs on the
//! sender's CPU, so megabytes queued per connection there cost that CPU pacing timers and
//! wake-ups per byte. So before a connection first streams a large file, its round-trip time is read
//! once; when the peer is near, its send buffer is fixed at `NEAR_SEND_BUFFER` (the kernel
//! doubles the value), which still covers 4 Gbit/s at 1 ms. Far peers keep autotuning. The
//! same holds for files over TLS (10 MiB over HTTPS: 1.65-2.8 GB/s, bimodal, before; 2.4-2.8
//! after). A file smaller than `SIZED_FROM` leaves the buffer alone: it fits either way, and
//! a fixed buffer cost 100 KiB answers 2-3 µs of CPU each (wrk -c50, pinned, 4 rounds: 22.9-26.7
//! µs unsized against 25.9-27.3 sized; nginx 24.9-25.5), while 10 MiB files gain from it
//! (1,603-1,641 µs per transfer sized against 1,778-2,020 unsized, and more transfers).

use std::os::fd::AsRawFd;

/// Round-trip time under which a peer counts as near, in microseconds.
const NEAR_RTT_MICROS: u32 = 1000;
/// Bytes of a file still to send from which the send buffer is sized.
pub const SIZED_FROM: u64 = 1 << 20;
/// Send buffer requested for a near peer (the kernel doubles it for bookkeeping).
const NEAR_SEND_BUFFER: libc::c_int = 256 * 1024;

/// Fixes the send buffer of a connection to a near peer (see the module comment). Costs one
/// `getsockopt`, and one `setsockopt` when the peer is near.
pub fn size_send_buffer(sock: &impl AsRawFd) {
    let fd = sock.as_raw_fd();
    // SAFETY: an all-zero tcp_info is valid; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 || info.tcpi_rtt == 0 || info.tcpi_rtt >= NEAR_RTT_MICROS {
        return;
    }
    // SAFETY: setsockopt reads an int from a valid pointer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&NEAR_SEND_BUFFER as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
