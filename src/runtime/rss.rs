//! Receive-side scaling: on which receive queue a NIC puts a flow.
//!
//! A NIC with RSS hashes each received frame's addresses and ports with
//! the Toeplitz function under a secret key, and the low bits of the hash
//! index an indirection table of queue numbers. When the key, the table
//! and the hashed fields are known (`ethtool -x`, `ethtool -n IF
//! rx-flow-hash tcp4`), a worker opening a connection can pick a local
//! port whose *replies* hash to its own queue, so they never need handing
//! to another worker. This is how mTCP and F-Stack place their active
//! opens. Devices that do not report it (veth, many virtual NICs) keep
//! the port split with hand-off (see `active_open`).
//!
//! The hash follows Microsoft's "RSS hashing" specification (the Toeplitz
//! function over source address, destination address, source port,
//! destination port, in network byte order); its verification suite is
//! the unit test below.

use std::net::SocketAddrV4;
use std::process::Command;

/// Input bytes of the IPv4 + TCP hash: two addresses and two ports.
const INPUT_BYTES: usize = 12;

/// A NIC's RSS state for TCP over IPv4: the Toeplitz key and the
/// indirection table, read once at start-up.
#[derive(Clone)]
pub struct RssTable {
    /// For input byte `i` with value `v`, the XOR of the key windows of
    /// the set bits of `v` at that position: 12 lookups per hash.
    windows: Box<[[u32; 256]; INPUT_BYTES]>,
    /// Queue per hash bucket.
    indirection: Vec<u32>,
}

impl std::fmt::Debug for RssTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RssTable")
            .field("indirection", &self.indirection)
            .finish()
    }
}

impl RssTable {
    /// A table for `key` (at least 16 bytes: the 12 input bytes plus one
    /// 32-bit window) and the non-empty `indirection` table.
    pub fn new(key: &[u8], indirection: Vec<u32>) -> Result<RssTable, String> {
        if key.len() < INPUT_BYTES + 4 {
            return Err(format!(
                "an RSS key of {} bytes is too short for IPv4 with ports (16 at least)",
                key.len()
            ));
        }
        if indirection.is_empty() {
            return Err("the RSS indirection table is empty".into());
        }
        // The 32 key bits starting at bit `pos` (bit 0 = the first byte's
        // most significant bit).
        let window = |pos: usize| -> u32 {
            let byte = pos / 8;
            let mut w = 0u64;
            for i in 0..5 {
                w = (w << 8) | u64::from(key.get(byte + i).copied().unwrap_or(0));
            }
            (w >> (8 - pos % 8)) as u32
        };
        let mut windows = Box::new([[0u32; 256]; INPUT_BYTES]);
        for (i, table) in windows.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|b| v & (0x80 >> b) != 0)
                    .fold(0, |h, b| h ^ window(i * 8 + b));
            }
        }
        Ok(RssTable {
            windows,
            indirection,
        })
    }

    /// The Toeplitz hash of a frame from `src` to `dst`.
    pub fn hash(&self, src: SocketAddrV4, dst: SocketAddrV4) -> u32 {
        let mut input = [0u8; INPUT_BYTES];
        input[0..4].copy_from_slice(&src.ip().octets());
        input[4..8].copy_from_slice(&dst.ip().octets());
        input[8..10].copy_from_slice(&src.port().to_be_bytes());
        input[10..12].copy_from_slice(&dst.port().to_be_bytes());
        input
            .iter()
            .zip(self.windows.iter())
            .fold(0, |h, (&b, table)| h ^ table[usize::from(b)])
    }

    /// The receive queue of a frame from `src` to `dst`. Drivers index
    /// the table with the hash's low bits (`hash & (size - 1)`; the size
    /// is a power of two on every driver we know, where `%` is the same).
    pub fn queue_of(&self, src: SocketAddrV4, dst: SocketAddrV4) -> u32 {
        self.indirection[self.hash(src, dst) as usize % self.indirection.len()]
    }

    /// Whether every queue in `0..queues` receives some bucket: otherwise
    /// a worker on a queue without buckets could never connect.
    pub fn covers(&self, queues: usize) -> bool {
        (0..queues).all(|q| self.indirection.contains(&(q as u32)))
    }

    /// Reads the table of `iface` with `ethtool`. Fails with the reason
    /// when the device does not report RSS, hashes with anything but
    /// Toeplitz, transforms the input (symmetric hashing), or does not
    /// hash TCP/IPv4 ports.
    pub fn read(iface: &str) -> Result<RssTable, String> {
        let run = |args: &[&str]| -> Result<String, String> {
            let out = Command::new("ethtool")
                .args(args)
                .output()
                .map_err(|e| format!("cannot run ethtool: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ethtool {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let fields = run(&["-n", iface, "rx-flow-hash", "tcp4"])?;
        check_tcp4_fields(&fields)?;
        parse_ethtool_x(&run(&["-x", iface])?)
    }
}

/// Checks `ethtool -n IF rx-flow-hash tcp4`: both addresses and both
/// ports must be hashed, or the port choice changes nothing.
fn check_tcp4_fields(out: &str) -> Result<(), String> {
    let needed = ["IP SA", "IP DA", "L4 bytes 0 & 1", "L4 bytes 2 & 3"];
    match needed.iter().find(|f| !out.contains(*f)) {
        None => Ok(()),
        Some(missing) => Err(format!(
            "the NIC's TCP/IPv4 hash does not use {missing}, so ports do not choose the queue"
        )),
    }
}

/// Parses `ethtool -x` output: the indirection table, the key, and the
/// hash function, which must be Toeplitz on its own.
fn parse_ethtool_x(out: &str) -> Result<RssTable, String> {
    let mut indirection = Vec::new();
    let mut key = None;
    let mut toeplitz = false;
    let mut other_function = None;
    let mut symmetric = false;
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some((index, queues)) = t.split_once(':') {
            if index.trim().parse::<u32>().is_ok() && key.is_none() {
                for q in queues.split_whitespace() {
                    indirection.push(
                        q.parse::<u32>()
                            .map_err(|_| format!("bad indirection table entry {q:?}"))?,
                    );
                }
                continue;
            }
        }
        if t.starts_with("RSS hash key") {
            let hex = lines.next().unwrap_or("").trim();
            let bytes: Result<Vec<u8>, _> =
                hex.split(':').map(|b| u8::from_str_radix(b, 16)).collect();
            key = Some(bytes.map_err(|_| format!("cannot read the RSS hash key {hex:?}"))?);
            continue;
        }
        match t.split_once(": ") {
            Some(("toeplitz", "on")) => toeplitz = true,
            Some(("symmetric-xor" | "symmetric-or-xor", "on")) => symmetric = true,
            Some((name, "on")) => other_function = Some(name.to_owned()),
            _ => {}
        }
    }
    if let Some(name) = other_function {
        return Err(format!("the NIC hashes with {name}, not Toeplitz"));
    }
    if !toeplitz {
        return Err("the NIC does not report Toeplitz hashing".into());
    }
    if symmetric {
        return Err("the NIC transforms the hash input (symmetric-xor)".into());
    }
    let key = key.ok_or("ethtool -x printed no RSS hash key")?;
    RssTable::new(&key, indirection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The key of Microsoft's verification suite (also Intel's 82599
    /// datasheet 7.1.2.8.3).
    const KEY: &str = "6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:\
                       ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa";

    fn key() -> Vec<u8> {
        KEY.split(':')
            .map(|b| u8::from_str_radix(b.trim(), 16).unwrap())
            .collect()
    }

    fn addr(s: &str, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(s.parse::<Ipv4Addr>().unwrap(), port)
    }

    #[test]
    fn the_verification_suite_hashes_as_specified() {
        let t = RssTable::new(&key(), vec![0]).unwrap();
        // (source, destination, hash over addresses and ports)
        let suite = [
            (
                addr("66.9.149.187", 2794),
                addr("161.142.100.80", 1766),
                0x51cc_c178,
            ),
            (
                addr("199.92.111.2", 14230),
                addr("65.69.140.83", 4739),
                0xc626_b0ea,
            ),
            (
                addr("24.19.198.95", 12898),
                addr("12.22.207.184", 38024),
                0x5c2b_394a,
            ),
            (
                addr("38.27.205.30", 48228),
                addr("209.142.163.6", 2217),
                0xafc7_327f,
            ),
            (
                addr("153.39.163.191", 44251),
                addr("202.188.127.2", 1303),
                0x10e8_28a2,
            ),
        ];
        for (src, dst, want) in suite {
            assert_eq!(t.hash(src, dst), want, "{src} -> {dst}");
        }
    }

    /// `ethtool -x` of a 4-queue NIC (format of ethtool 6.x).
    fn sample(function_lines: &str) -> String {
        let mut s = String::from("RX flow hash indirection table for eth1 with 4 RX ring(s):\n");
        for row in 0..16 {
            s.push_str(&format!("{:5}:", row * 8));
            for i in 0..8 {
                s.push_str(&format!("{:6}", (row * 8 + i) % 4));
            }
            s.push('\n');
        }
        s.push_str("RSS hash key:\n");
        s.push_str(&KEY.replace(' ', ""));
        s.push_str("\nRSS hash function:\n");
        s.push_str(function_lines);
        s
    }

    #[test]
    fn ethtool_output_gives_the_queue_of_a_flow() {
        let t = parse_ethtool_x(&sample(
            "    toeplitz: on\n    xor: off\n    crc32: off\nRSS input transformation:\n    symmetric-xor: off\n",
        ))
        .unwrap();
        assert_eq!(t.indirection.len(), 128);
        assert!(t.covers(4) && !t.covers(5));
        // 0x51ccc178: bucket 0x78 = 120 of 128, queue 120 % 4 = 0.
        let (src, dst) = (addr("66.9.149.187", 2794), addr("161.142.100.80", 1766));
        assert_eq!(t.queue_of(src, dst), 0);
        // 0xc626b0ea: bucket 0x6a = 106, queue 2.
        let (src, dst) = (addr("199.92.111.2", 14230), addr("65.69.140.83", 4739));
        assert_eq!(t.queue_of(src, dst), 2);
    }

    #[test]
    fn other_hash_functions_and_symmetric_input_are_refused() {
        let xor = parse_ethtool_x(&sample("    toeplitz: off\n    xor: on\n    crc32: off\n"));
        assert!(xor.unwrap_err().contains("xor"));
        let sym = parse_ethtool_x(&sample(
            "    toeplitz: on\n    xor: off\nRSS input transformation:\n    symmetric-xor: on\n",
        ));
        assert!(sym.unwrap_err().contains("symmetric"));
        assert!(parse_ethtool_x("RSS hash key:\nzz:01\n").is_err());
        assert!(RssTable::new(&[1, 2, 3], vec![0]).is_err());
        assert!(RssTable::new(&key(), Vec::new()).is_err());
    }

    #[test]
    fn the_hashed_fields_must_include_both_ports() {
        let full = "TCP over IPV4 flows use these fields for computing Hash flow key:\n\
                    IP SA\nIP DA\nL4 bytes 0 & 1 [TCP/UDP src port]\nL4 bytes 2 & 3 [TCP/UDP dst port]\n";
        assert!(check_tcp4_fields(full).is_ok());
        let l3 =
            "TCP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\nIP DA\n";
        assert!(check_tcp4_fields(l3)
            .unwrap_err()
            .contains("L4 bytes 0 & 1"));
    }
}
