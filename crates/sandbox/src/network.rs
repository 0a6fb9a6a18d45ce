//! Outbound network for the boxes that ask for it, when the operator allows it.
//!
//! Every other box has an empty network namespace. A box with network gets a
//! fresh network namespace of its own (cloned with it, owned by its user
//! namespace) and, before its program starts:
//!
//! - a firewall in that namespace (nftables, loaded by the supervisor, which the
//!   program cannot change: it has no capability there) that refuses every
//!   destination in [`NetworkOptions::deny`]: by default the host's and the
//!   local networks' private, loopback, link-local (cloud metadata) and shared
//!   ranges, so a box reaches the internet but not the machines beside it;
//! - a user-mode TCP/IP stack, `slirp4netns` (the one rootless containers use),
//!   attached to a tap device in the namespace, with the host's loopback
//!   disabled and its own sandbox and seccomp filter on; it exits when the box
//!   is buried. DNS goes to its forwarder at 10.0.2.3.
//!
//! No host firewall rule, bridge or NAT table is created or changed.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

/// The address of slirp4netns's DNS forwarder inside a box.
pub const DNS_SERVER: &str = "10.0.2.3";

/// What boxes with network ([`crate::BoxConfig::with_network`]) get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkOptions {
    /// The slirp4netns program.
    pub slirp4netns: PathBuf,
    /// The nft program (nftables).
    pub nft: PathBuf,
    /// Destinations a box may not reach (IPv4 and IPv6 CIDR blocks).
    pub deny: Vec<String>,
    /// Also refuse every address of this host's own interfaces (read once, when
    /// the sandbox is made): slirp4netns connects from the host, so a service of
    /// the host listening on all addresses would otherwise be reachable.
    pub deny_host_addresses: bool,
    /// How long the network may take to come up before the run fails.
    pub setup_timeout: Duration,
}

/// The ranges refused by default: everything that is not the public internet.
pub const DEFAULT_DENY: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    // Azure's WireServer answers VMs from outside the link-local range.
    "168.63.129.16/32",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            slirp4netns: PathBuf::from("/usr/bin/slirp4netns"),
            nft: PathBuf::from("/usr/sbin/nft"),
            deny: DEFAULT_DENY.iter().map(|s| s.to_string()).collect(),
            deny_host_addresses: true,
            setup_timeout: Duration::from_secs(5),
        }
    }
}

/// The network of a sandbox: its options, checked, and its firewall, written once.
pub(crate) struct Network {
    options: NetworkOptions,
    /// The nftables ruleset every box with network gets.
    ruleset: String,
}

impl Network {
    /// Checks the programs and the deny list, and builds the box firewall.
    pub(crate) fn prepare(options: NetworkOptions) -> Result<Network> {
        for (program, package) in [
            (&options.slirp4netns, "slirp4netns"),
            (&options.nft, "nftables"),
        ] {
            if !program.is_file() {
                return Err(Error::InvalidConfig(format!(
                    "boxes with network need {} (apt-get install {package})",
                    program.display()
                )));
            }
        }
        let mut deny = options.deny.clone();
        if options.deny_host_addresses {
            deny.extend(host_addresses()?.iter().map(|a| match a {
                IpAddr::V4(a) => format!("{a}/32"),
                IpAddr::V6(a) => format!("{a}/128"),
            }));
        }
        let ruleset = firewall(&deny)?;
        Ok(Network { options, ruleset })
    }

    /// Gives the box whose init is `pid` its firewall and its link to the outside;
    /// returns once the program may use it. The link lives as long as the guard.
    pub(crate) fn attach(&self, pid: libc::pid_t) -> Result<Link> {
        let netns_path = format!("/proc/{pid}/ns/net");
        let netns = std::fs::File::open(&netns_path)
            .map_err(|e| Error::io("cannot open", Path::new(&netns_path), e))?;
        self.load_firewall(&netns)?;
        let (mut ready_r, ready_w) = std::io::pipe().map_err(|source| Error::Syscall {
            call: "pipe(slirp4netns ready)",
            source,
        })?;
        let ready_fd = OwnedFd::from(ready_w);
        let raw_ready = ready_fd.as_raw_fd();
        // slirp4netns exits when this pipe closes: when the link is dropped, or
        // when this process dies, whatever state the box was left in.
        let (exit_r, exit_w) = std::io::pipe().map_err(|source| Error::Syscall {
            call: "pipe(slirp4netns exit)",
            source,
        })?;
        let exit_fd = OwnedFd::from(exit_r);
        let raw_exit = exit_fd.as_raw_fd();
        let mut command = Command::new(&self.options.slirp4netns);
        command
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                "--ready-fd=3",
                "--exit-fd=4",
            ])
            .arg(pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: between fork and exec the closure only calls unshare, mount,
        // fcntl, dup2 and setrlimit, which are async-signal-safe system calls, on
        // a static string and on descriptors that stay open until spawn returns.
        unsafe {
            command.pre_exec(move || {
                // slirp4netns's --enable-sandbox makes only "/" private in the mount
                // namespace it unshares, then detaches the old root: on a host whose
                // mounts are shared (systemd's default) the unmounts of submounts
                // of shared mounts (/sys/fs/cgroup, /dev/pts, /run/user/...) would
                // propagate to the host's. In a namespace of its own where every
                // mount is a slave of the host's, nothing it does reaches the host.
                if libc::unshare(libc::CLONE_NEWNS) < 0
                    || libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_SLAVE,
                        std::ptr::null(),
                    ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // Both are first lifted above 3 and 4, so neither can be the other's
                // target; dup2 then clears close-on-exec on the copies.
                let lifted = [
                    libc::fcntl(raw_ready, libc::F_DUPFD, 10),
                    libc::fcntl(raw_exit, libc::F_DUPFD, 10),
                ];
                for (from, to) in lifted.into_iter().zip([3, 4]) {
                    if from < 0 || libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Every connection of the box is a socket of slirp4netns's: bound
                // them, since slirp4netns runs outside the box's limits.
                let sockets = libc::rlimit {
                    rlim_cur: SLIRP_OPEN_FILES,
                    rlim_max: SLIRP_OPEN_FILES,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &sockets) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| Error::Syscall {
            call: "spawn slirp4netns",
            source,
        })?;
        drop((ready_fd, exit_fd));
        let said = child.stderr.take().map(keep_tail);
        let mut link = Link {
            child: Some(child),
            said,
            _exit: exit_w,
        };
        let deadline = Instant::now() + self.options.setup_timeout;
        let mut byte = [0u8; 1];
        // The ready descriptor gets one byte once the tap device is configured.
        let ready =
            wait_readable(&ready_r, deadline) && ready_r.read(&mut byte).is_ok_and(|n| n == 1);
        if !ready {
            let why = link.failure();
            return Err(Error::Setup {
                step: "start the box's network (slirp4netns)".into(),
                source: std::io::Error::other(why),
            });
        }
        Ok(link)
    }

    /// Loads the firewall into the network namespace `netns` with `nft -f -`.
    fn load_firewall(&self, netns: &std::fs::File) -> Result<()> {
        let raw = netns.as_raw_fd();
        let mut command = Command::new(&self.options.nft);
        command
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: between fork and exec the closure only calls setns, which is
        // async-signal-safe, on a descriptor open until spawn returns.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(raw, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let failed = |source| Error::Syscall {
            call: "run nft",
            source,
        };
        let mut child = command.spawn().map_err(failed)?;
        if let Some(mut stdin) = child.stdin.take()
            && let Err(error) = stdin.write_all(self.ruleset.as_bytes())
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(error));
        }
        let output = child.wait_with_output().map_err(failed)?;
        if !output.status.success() {
            return Err(Error::Setup {
                step: "load the box's firewall (nft)".into(),
                source: std::io::Error::other(
                    String::from_utf8_lossy(&output.stderr).trim().to_string(),
                ),
            });
        }
        Ok(())
    }
}

/// Waits until `pipe` is readable (or closed) or `deadline` passes.
fn wait_readable(pipe: &std::io::PipeReader, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut poll, 1, ms) };
        if rc > 0 {
            return true;
        }
        if rc < 0 && sys::errno() != libc::EINTR {
            return false;
        }
    }
}

/// Open files of a box's slirp4netns: its sockets, one per connection of the box.
const SLIRP_OPEN_FILES: libc::rlim_t = 1024;

/// How much of slirp4netns's messages is kept, for the error when it fails.
const KEPT_MESSAGES: usize = 4096;

/// A box's running slirp4netns: killed and reaped when dropped.
pub(crate) struct Link {
    child: Option<Child>,
    /// The end of what it printed (its stderr is read all the time, so that
    /// messages the box's traffic provokes can never fill the pipe and stall it).
    said: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// Closing it tells slirp4netns to exit.
    _exit: std::io::PipeWriter,
}

/// Reads `stderr` to its end on a thread of its own, keeping the last bytes.
fn keep_tail(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > KEPT_MESSAGES {
                tail.drain(..tail.len() - KEPT_MESSAGES);
            }
        }
        tail
    })
}

impl Link {
    /// Why the link did not come up: its exit and the end of what it printed.
    fn failure(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "slirp4netns is gone".into();
        };
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let said = self
            .said
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        format!(
            "slirp4netns did not get ready ({status}): {}",
            String::from_utf8_lossy(&said).trim()
        )
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Its stderr is closed now: the reader ends.
        if let Some(reader) = self.said.take() {
            let _ = reader.join();
        }
    }
}

/// The nftables ruleset of a box: loopback and DNS to slirp's forwarder
/// allowed, the deny list refused (a reset for TCP, an ICMP error otherwise, so
/// programs fail at once instead of timing out).
fn firewall(deny: &[String]) -> Result<String> {
    let mut blocks = Vec::with_capacity(deny.len());
    for block in deny {
        let Some(net) = cidr(block) else {
            return Err(Error::InvalidConfig(format!(
                "'{block}' in the network deny list is not a CIDR block (such as 10.0.0.0/8)"
            )));
        };
        blocks.push(net);
    }
    // nft refuses overlapping intervals in one set: keep only the outermost.
    let outermost: Vec<(IpAddr, u8)> = blocks
        .iter()
        .enumerate()
        .filter(|(i, inner)| {
            !blocks.iter().enumerate().any(|(j, outer)| {
                j != *i && contains(*outer, **inner) && (outer != *inner || j < *i)
            })
        })
        .map(|(_, b)| *b)
        .collect();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (address, prefix) in outermost {
        match address {
            IpAddr::V4(_) => v4.push(format!("{address}/{prefix}")),
            IpAddr::V6(_) => v6.push(format!("{address}/{prefix}")),
        }
    }
    let mut rules = String::from(
        "table inet runbox {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    oifname \"lo\" accept\n",
    );
    rules.push_str(&format!(
        "    ip daddr {DNS_SERVER} udp dport 53 accept\n    ip daddr {DNS_SERVER} tcp dport 53 accept\n"
    ));
    if !v4.is_empty() {
        rules.push_str(&format!(
            "    ip daddr {{ {} }} meta l4proto tcp reject with tcp reset\n    ip daddr {{ {} }} reject\n",
            v4.join(", "),
            v4.join(", ")
        ));
    }
    if !v6.is_empty() {
        rules.push_str(&format!(
            "    ip6 daddr {{ {} }} meta l4proto tcp reject with tcp reset\n    ip6 daddr {{ {} }} reject\n",
            v6.join(", "),
            v6.join(", ")
        ));
    }
    rules.push_str("  }\n}\n");
    Ok(rules)
}

/// The addresses of this host's interfaces.
fn host_addresses() -> Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that is freed below.
    if unsafe { libc::getifaddrs(&mut list) } < 0 {
        return Err(Error::last_os("getifaddrs"));
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, alive until
        // freeifaddrs; its address, when not null, is a sockaddr of the family it
        // names, so the casts read structures of the right type.
        unsafe {
            let address = (*entry).ifa_addr;
            if !address.is_null() {
                match i32::from((*address).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(address as *const libc::sockaddr_in);
                        addresses
                            .push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(address as *const libc::sockaddr_in6);
                        addresses.push(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// Parses `ADDRESS/PREFIX` and clears the host bits (nft wants the network).
fn cidr(block: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = block.trim().split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some((IpAddr::V4((u32::from(a) & mask).into()), prefix))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some((IpAddr::V6((u128::from(a) & mask).into()), prefix))
        }
        _ => None,
    }
}

/// Whether block `outer` holds all of block `inner`.
fn contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    outer.1 <= inner.1
        && match (outer.0, inner.0) {
            (IpAddr::V4(_), IpAddr::V4(i)) => cidr(&format!("{i}/{}", outer.1)) == Some(outer),
            (IpAddr::V6(_), IpAddr::V6(i)) => cidr(&format!("{i}/{}", outer.1)) == Some(outer),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firewall_refuses_the_deny_list_and_lets_dns_through() {
        let rules = firewall(&["10.0.0.0/8".into(), "fc00::/7".into()]).unwrap();
        assert!(
            rules.contains("ip daddr 10.0.2.3 udp dport 53 accept"),
            "{rules}"
        );
        assert!(rules.contains("ip daddr { 10.0.0.0/8 } meta l4proto tcp reject with tcp reset"));
        assert!(rules.contains("ip6 daddr { fc00::/7 } reject"));
        // DNS is allowed before the deny rules that would refuse 10.0.2.3.
        assert!(rules.find("dport 53").unwrap() < rules.find("10.0.0.0/8").unwrap());
    }

    #[test]
    fn blocks_inside_others_and_repeats_are_left_out() {
        let rules = firewall(&[
            "10.1.0.0/16".into(),
            "10.0.0.0/8".into(),
            "10.0.0.0/8".into(),
            "192.168.1.7/32".into(),
        ])
        .unwrap();
        assert!(
            rules.contains("ip daddr { 10.0.0.0/8, 192.168.1.7/32 } meta"),
            "{rules}"
        );
    }

    #[test]
    fn the_hosts_own_addresses_are_found() {
        let addresses = host_addresses().unwrap();
        assert!(
            addresses.contains(&"127.0.0.1".parse().unwrap()),
            "{addresses:?}"
        );
    }

    #[test]
    fn blocks_are_reduced_to_their_network() {
        assert_eq!(cidr("10.1.2.3/8"), Some(("10.0.0.0".parse().unwrap(), 8)));
        assert_eq!(cidr("0.0.0.0/0"), Some(("0.0.0.0".parse().unwrap(), 0)));
        assert_eq!(cidr("fe80::1/10"), Some(("fe80::".parse().unwrap(), 10)));
        assert_eq!(cidr("10.0.0.0"), None);
        assert_eq!(cidr("::/129"), None);
    }

    #[test]
    fn a_deny_entry_that_is_not_a_block_is_refused() {
        let err = firewall(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
    }
}
