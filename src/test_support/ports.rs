//! Ports for the servers tests start as child processes (moto, PostgreSQL).
//!
//! A child is told its port before it binds it, so the port is free only
//! when it was checked. A port below the kernel's ephemeral range cannot be
//! handed to any `bind(0)` in the meantime (every ecrd the tests start
//! binds port 0), so it is chosen there: at random, so that test binaries
//! running at once rarely pick the same one, and checked free.

use std::net::{Ipv4Addr, TcpListener};

use rand::Rng as _;

/// Where the search starts: above the well-known and most registered
/// service ports.
const LOWEST: u16 = 20_000;

/// A loopback port, outside the ephemeral range, nothing listens on now.
pub fn for_child_server() -> u16 {
    let (ephemeral_low, _) = ephemeral_range();
    let mut rng = rand::thread_rng();
    if ephemeral_low > LOWEST + 1_000 {
        for _ in 0..200 {
            let port = rng.gen_range(LOWEST..ephemeral_low);
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return port;
            }
        }
    }
    // An unusual kernel configuration: fall back to what the kernel hands
    // out, with the race this module otherwise avoids.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// The kernel's ephemeral port range (Linux's default where it cannot be
/// read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_outside_the_ephemeral_range_and_free() {
        let (low, _) = super::ephemeral_range();
        let port = super::for_child_server();
        assert!(port < low, "{port} is not below {low}");
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
