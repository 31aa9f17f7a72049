//! The SSRF guard: a tool call may reach only public addresses. A request is refused
//! when its scheme is not http/https, or when its host — an IP literal, or any address a
//! name resolves to — is private, loopback, link-local, metadata or otherwise special,
//! unless the host (or `host:port`) is allow-listed.
//!
//! Three places enforce it, because each sees what the others cannot:
//! [`Guard::check_url`] before every request (IP literals never reach a resolver),
//! [`GuardedResolver`] inside the HTTP client (the addresses checked are the addresses
//! connected to, so a DNS answer that changes between check and connect — rebinding —
//! cannot slip through), and [`Guard::redirect_policy`] on every redirect hop. Names are
//! looked up in one place only, the resolver, through a [`Lookup`]: the system's, or one
//! a test scripts ([`Guard::with_lookup`]).

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Most redirects followed in one attempt.
pub const MAX_REDIRECTS: usize = 5;

/// Why the guard refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the SSRF guard: {0}")]
pub struct Refused(pub String);

/// Hosts let through although they resolve to blocked addresses.
#[derive(Debug, Default, Clone)]
struct AllowList {
    /// `host` entries: any port.
    hosts: HashSet<String>,
    /// `host:port` entries: that port only.
    host_ports: HashSet<(String, u16)>,
}

impl AllowList {
    fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            match split_host_port(entry)? {
                (host, Some(port)) => list.host_ports.insert((host, port)),
                (host, None) => list.hosts.insert(host),
            };
        }
        Ok(list)
    }

    /// Whether `host` on `port` is allow-listed.
    fn allows(&self, host: &str, port: u16) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host) || self.host_ports.contains(&(host, port))
    }

    /// Whether some port of `host` is allow-listed: all a resolver can tell, as it is
    /// not given the port. [`Guard::check_url`] refuses the ports not listed before the
    /// client resolves.
    fn allows_some_port(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host) || self.host_ports.iter().any(|(h, _)| *h == host)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(entry: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("allow-list entry `{entry}` is not `host` or `host:port`");
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            ),
        };
        return Ok((normalize_host(host), port));
    }
    match entry.matches(':').count() {
        0 => Ok((normalize_host(entry), None)),
        1 => {
            let (host, port) = entry.split_once(':').ok_or_else(bad)?;
            Ok((normalize_host(host), Some(port.parse().map_err(|_| bad())?)))
        }
        // More than one colon without brackets: a bare IPv6 address.
        _ => Ok((normalize_host(entry), None)),
    }
}

/// Lower case, no IPv6 brackets, no trailing dot: how hosts are compared.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether a connection to this address is refused (unless allow-listed).
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                           // 10/8 private
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 carrier-grade NAT
        || a == 127                          // 127/8 loopback
        || (a == 169 && b == 254)            // 169.254/16 link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)    // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 168)            // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || a >= 224 // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    let s = ip.segments();
    // An IPv4 address in IPv6 clothing reaches the IPv4 host: judge it as IPv4.
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated) and 64:ff9b::a.b.c.d
    // (NAT64 well-known prefix).
    let embedded =
        |s: &[u16; 8]| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return is_blocked_v4(embedded(&s));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_blocked_v4(embedded(&s));
    }
    (s[0] & 0xfe00) == 0xfc00          // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80   // fe80::/10 link-local
        || (s[0] & 0xff00) == 0xff00   // ff00::/8 multicast
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata (IPv6)
}

/// The addresses of a name, as the future a [`Lookup`] returns.
pub type Lookingup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Looks a name up. [`SystemLookup`] in the services; a test injects one that answers
/// what it scripts (a name that resolves privately, or public first and private next).
pub trait Lookup: Send + Sync + fmt::Debug {
    fn lookup(&self, host: &str) -> Lookingup;
}

/// The system resolver (`getaddrinfo` through `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> Lookingup {
        let host = host.to_owned();
        Box::pin(async move {
            // Port 0: only the addresses matter; the client puts in the URL's port.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// The guard, shared by the pre-request check, the resolver and the redirect policy.
#[derive(Debug, Clone)]
pub struct Guard {
    allow: Arc<AllowList>,
    lookup: Arc<dyn Lookup>,
}

impl Guard {
    /// A guard with `allow_hosts` entries (`host` or `host:port`), resolving names with
    /// the system resolver.
    pub fn new(allow_hosts: &[String]) -> Result<Guard, String> {
        Ok(Guard {
            allow: Arc::new(AllowList::parse(allow_hosts)?),
            lookup: Arc::new(SystemLookup),
        })
    }

    /// The same guard resolving names with `lookup` (tests: scripted DNS answers).
    pub fn with_lookup(self, lookup: Arc<dyn Lookup>) -> Guard {
        Guard { lookup, ..self }
    }

    /// The checks that need no DNS: the scheme, and the address when the host is an IP
    /// literal. `Ok(true)` when the host is a name the resolver still has to check.
    fn check_static(&self, url: &Url) -> Result<bool, Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refused(format!("`{url}` has no host")))?;
        let port = url.port_or_known_default().unwrap_or(0);
        // The URL parser has already normalised IPv4 literals (`0x7f.1`, `2130706433`)
        // to dotted form, so parsing the host string sees every IP literal.
        let Ok(ip) = normalize_host(host).parse::<IpAddr>() else {
            return Ok(true);
        };
        if is_blocked(ip) && !self.allow.allows(&ip.to_string(), port) {
            return Err(Refused(format!("address {ip} is not public")));
        }
        Ok(false)
    }

    /// Checks a request's URL before it is sent, so a refused URL gets no request at all,
    /// without resolving it: the scheme, an IP-literal host's address, and a name
    /// allow-listed for other ports only, which is refused: the resolver, which is not
    /// told the port, lets that name through unchecked, and checking it here with a lookup
    /// of its own would check an answer other than the one connected to (DNS rebinding).
    /// Every other name is resolved and checked by [`GuardedResolver`] when the client
    /// connects.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !self.check_static(url)? {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.allow.allows(host, port) && self.allow.allows_some_port(host) {
            return Err(Refused(format!(
                "`{host}:{port}`: `{host}` is allow-listed on other ports only"
            )));
        }
        Ok(())
    }

    /// The client's redirect policy: at most [`MAX_REDIRECTS`] hops, each hop checked as
    /// [`Guard::check_url`] checks a URL; a hop to a name goes through the resolver again.
    pub fn redirect_policy(&self) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match guard.check_url(attempt.url()) {
                Err(refused) => attempt.error(refused),
                Ok(()) => attempt.follow(),
            }
        })
    }

    /// The client's DNS resolver.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            allow: self.allow.clone(),
            lookup: self.lookup.clone(),
        }
    }
}

/// Refuses the whole name when any of its addresses is blocked: connecting to the
/// public ones only would still let an attacker's name choose which one we try.
fn check_addrs(host: &str, addrs: impl Iterator<Item = IpAddr>) -> Result<(), Refused> {
    let mut any = false;
    for ip in addrs {
        any = true;
        if is_blocked(ip) {
            return Err(Refused(format!(
                "`{host}` resolves to {ip}, which is not public"
            )));
        }
    }
    if !any {
        return Err(Refused(format!("`{host}` resolves to no address")));
    }
    Ok(())
}

/// Resolves with the guard's [`Lookup`] and refuses names with a blocked address; the
/// client connects only to the addresses returned here, which are the checked ones.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<AllowList>,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        let lookup = self.lookup.lookup(&host);
        Box::pin(async move {
            let ips = lookup.await?;
            // A name allow-listed on some port reaches the resolver only for an allowed
            // port: `Guard::check_url` refuses the others before the client connects.
            if !allow.allows_some_port(&host) {
                check_addrs(&host, ips.iter().copied())?;
            }
            // Port 0: the client puts in the URL's port.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str]) -> Guard {
        Guard::new(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn blocked(ip: &str) -> bool {
        is_blocked(ip.parse().unwrap())
    }

    fn check(guard: &Guard, url: &str) -> Result<(), Refused> {
        guard.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn every_blocked_ipv4_range_is_refused_at_both_ends() {
        for ip in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.0.0",
            "169.254.169.254",
            "169.254.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.255",
            "192.168.0.0",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "224.0.0.0",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
    }

    #[test]
    fn public_ipv4_addresses_just_outside_the_blocked_ranges_pass() {
        for ip in [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!blocked(ip), "{ip} should pass");
        }
    }

    #[test]
    fn every_blocked_ipv6_range_is_refused() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "fd00:ec2::254",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
    }

    #[test]
    fn ipv4_in_ipv6_is_judged_as_its_ipv4_address() {
        assert!(blocked("::ffff:127.0.0.1"));
        assert!(blocked("::ffff:169.254.169.254"));
        assert!(blocked("::10.0.0.1"));
        assert!(blocked("64:ff9b::192.168.1.1"));
        assert!(!blocked("::ffff:8.8.8.8"));
        assert!(!blocked("64:ff9b::8.8.8.8"));
    }

    #[test]
    fn a_public_ipv6_address_passes() {
        assert!(!blocked("2606:4700:4700::1111"));
        assert!(!blocked("fec0::1"));
    }

    #[test]
    fn a_loopback_address_is_refused_unless_allow_listed() {
        assert!(check(&guard(&[]), "http://127.0.0.1:8090/x").is_err());
        assert!(check(&guard(&["127.0.0.1"]), "http://127.0.0.1:8090/x").is_ok());
    }

    #[test]
    fn a_host_port_entry_allows_that_port_only() {
        let guard = guard(&["127.0.0.1:8090"]);
        assert!(check(&guard, "http://127.0.0.1:8090/x").is_ok());
        assert!(check(&guard, "http://127.0.0.1:8091/x").is_err());
    }

    #[test]
    fn an_ipv6_allow_list_entry_matches_the_bracketed_host() {
        assert!(check(&guard(&["[::1]:8090"]), "http://[::1]:8090/").is_ok());
        assert!(check(&guard(&["::1"]), "http://[::1]:9/").is_ok());
        assert!(check(&guard(&[]), "http://[::1]:8090/").is_err());
    }

    #[test]
    fn the_metadata_address_is_refused() {
        let refused = check(&guard(&[]), "http://169.254.169.254/latest/meta-data");
        assert!(refused.unwrap_err().0.contains("169.254.169.254"));
    }

    #[test]
    fn a_scheme_other_than_http_or_https_is_refused() {
        assert!(check(&guard(&[]), "file:///etc/passwd").is_err());
        assert!(check(&guard(&[]), "ftp://8.8.8.8/").is_err());
    }

    #[test]
    fn a_name_allow_listed_for_another_port_is_refused_without_a_lookup() {
        let guard = guard(&["localhost:8090"]);
        assert!(check(&guard, "http://localhost:8090/").is_ok());
        let refused = check(&guard, "http://localhost:9999/").unwrap_err();
        assert!(refused.0.contains("other ports only"), "{}", refused.0);
    }

    #[test]
    fn every_encoding_of_a_loopback_literal_is_refused() {
        for url in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://127.0.0.1./",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            "http://0/",
            "http://[::]/",
            "http://0xa9fea9fe/",
            "http://2852039166/",
            "http://[::ffff:a9fe:a9fe]/",
        ] {
            let refused = check(&guard(&[]), url);
            assert!(refused.is_err(), "{url} should be refused");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_a_loopback_address() {
        let resolving = guard(&[]).resolver().resolve("localhost".parse().unwrap());
        assert!(resolving.await.is_err());
        let allowed = guard(&["localhost"])
            .resolver()
            .resolve("localhost".parse().unwrap());
        assert!(allowed.await.unwrap().next().is_some());
    }

    /// Answers each lookup with the next scripted list, the last one again once the
    /// script is used up, and counts the lookups.
    #[derive(Debug)]
    struct Scripted {
        answers: std::sync::Mutex<Vec<Vec<IpAddr>>>,
    }

    impl Lookup for Scripted {
        fn lookup(&self, _host: &str) -> Lookingup {
            let mut answers = self.answers.lock().unwrap();
            let next = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            };
            Box::pin(async move { Ok(next) })
        }
    }

    fn scripted(answers: &[&[&str]]) -> Arc<Scripted> {
        let answers = answers
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        Arc::new(Scripted {
            answers: std::sync::Mutex::new(answers),
        })
    }

    #[tokio::test]
    async fn the_resolver_checks_every_answer_it_hands_to_the_client() {
        // Public, then private (rebinding): each answer is checked as it is given.
        let guard = guard(&[]).with_lookup(scripted(&[&["8.8.8.8"], &["127.0.0.1"]]));
        let resolver = guard.resolver();
        let first: Vec<_> = resolver
            .resolve("rebind.example".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(first, ["8.8.8.8:0".parse::<SocketAddr>().unwrap()]);
        let second = resolver.resolve("rebind.example".parse().unwrap()).await;
        let error = second.err().expect("the private answer is refused");
        assert!(error.to_string().contains("127.0.0.1"), "{error}");
    }

    #[tokio::test]
    async fn a_name_with_one_private_address_among_public_ones_is_refused() {
        let guard = guard(&[]).with_lookup(scripted(&[&["8.8.8.8", "::ffff:10.0.0.1"]]));
        let resolving = guard.resolver().resolve("mixed.example".parse().unwrap());
        assert!(resolving.await.is_err());
    }

    #[test]
    fn allow_list_entries_are_parsed_as_host_or_host_port() {
        let list = AllowList::parse(&["Shop.Local".into(), "api:8080".into(), " ".into()]).unwrap();
        assert!(list.allows("shop.local", 1));
        assert!(list.allows("api", 8080));
        assert!(!list.allows("api", 8081));
        assert!(AllowList::parse(&["api:notaport".into()]).is_err());
    }
}
