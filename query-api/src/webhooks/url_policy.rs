//! Which URLs a webhook (or an alert) may call. `https://` only unless
//! plain HTTP is allowed; and no destination inside the server's own
//! networks unless private networks are allowed: every block of IANA's
//! IPv4 and IPv6 Special-Purpose Address registries is refused (the
//! `iprfc` crate's snapshot of both: loopback, private, shared, link-local
//! with cloud metadata, benchmarking `198.18.0.0/15`, documentation,
//! reserved, 6to4, Teredo, NAT64 and the rest), as are IPv4 multicast and
//! every IPv6 address outside global unicast `2000::/3` (site-local,
//! unique-local, IPv4-compatible and -mapped forms of any address). The
//! check runs at registration (the name is resolved) and again at every
//! connection ([`GuardedResolver`]: the addresses a name resolves to then
//! are filtered, so a DNS answer that changes cannot reach them), and for
//! IP-literal URLs before each attempt. The delivery client uses no proxy
//! (a proxy from the environment would connect on the guard's behalf).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    !(iprfc::RFC6890.contains(&ip) || ip.is_multicast())
}

fn public_v6(ip: Ipv6Addr) -> bool {
    // Global unicast is allocated from 2000::/3 only; everything else
    // (::/96 IPv4-compatible, ::ffff:0:0/96 mapped, fc00::/7, fe80::/10,
    // fec0::/10, ff00::/8) is refused whatever it embeds.
    let global_unicast = (ip.segments()[0] & 0xe000) == 0x2000;
    global_unicast && !iprfc::RFC6890.contains(&ip)
}

/// The resolver's refusal of a name that resolves to no public address.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no public address", self.0)
    }
}

impl std::error::Error for Refused {}

/// A URL checked for shape: scheme, host, no credentials. `Err` is the
/// message for a 400 on `url`.
pub fn check_shape(raw: &str, allow_http: bool) -> Result<Url, String> {
    if raw.len() > super::MAX_URL_LEN {
        return Err(format!("must be at most {} characters", super::MAX_URL_LEN));
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err("must start with https:// (plain HTTP is not allowed)".into()),
        _ => return Err("must start with https://".into()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

/// A URL fit for registration: its shape, and (unless private networks are
/// allowed) every address its host resolves to public.
pub async fn check(raw: &str, allow_http: bool, allow_private: bool) -> Result<Url, String> {
    let url = check_shape(raw, allow_http)?;
    if allow_private {
        return Ok(url);
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| "names a host that did not resolve in time".to_string())?
        .map_err(|_| "names a host that does not resolve".to_string())?
        .collect(),
    };
    if addrs.is_empty() {
        return Err("names a host that does not resolve".into());
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "resolves to {}, a loopback, private, link-local or otherwise internal address (not allowed)",
            bad.ip()
        ));
    }
    Ok(url)
}

/// For an IP-literal URL (which no resolver sees): whether its address may
/// be called.
pub fn literal_allowed(url: &Url, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
        _ => true,
    }
}

/// The delivery client's resolver: the system's answers, without the
/// addresses [`is_public`] refuses (an answer of only those fails the
/// connection).
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::",
            // Embedded IPv4, 6to4, Teredo, site-local, benchmarking,
            // reserved and protocol blocks.
            "::169.254.169.254",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "64:ff9b::a9fe:a9fe",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "240.0.0.1",
            "192.88.99.1",
            "3fff::1",
            "100::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn shapes() {
        assert!(check_shape("https://hooks.example.com/x", false).is_ok());
        assert!(check_shape("http://hooks.example.com/x", false)
            .unwrap_err()
            .contains("https://"));
        assert!(check_shape("http://hooks.example.com/x", true).is_ok());
        assert!(check_shape("ftp://x.example.com", true).is_err());
        assert!(check_shape("https://user:pw@x.example.com", false).is_err());
        assert!(check_shape("not a url", false).is_err());
        assert!(check_shape(
            &format!("https://x.example.com/{}", "a".repeat(3000)),
            false
        )
        .is_err());
    }

    #[tokio::test]
    async fn registration_refuses_internal_destinations_unless_allowed() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost/hook",
            // IPv4-compatible and -mapped IPv6, 6to4, Teredo, site-local,
            // benchmarking: accepted before the IANA registries were used.
            "https://[::169.254.169.254]/latest/meta-data",
            "https://[::127.0.0.1]/hook",
            "https://[::ffff:169.254.169.254]/hook",
            "https://[2002:a9fe:a9fe::1]/hook",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
            "https://[fec0::1]/hook",
            "https://198.18.0.1/hook",
        ] {
            let e = check(url, false, false).await.unwrap_err();
            assert!(
                e.contains("not allowed") || e.contains("resolve"),
                "{url}: {e}"
            );
            assert!(check(url, false, true).await.is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn the_delivery_resolver_drops_internal_answers() {
        // A name whose answers are all internal fails the connection: a DNS
        // answer that changes after registration cannot reach them.
        let name: Name = "localhost".parse().unwrap();
        let e = GuardedResolver.resolve(name).await.err().expect("refused");
        assert!(e.to_string().contains("no public address"), "{e}");
    }
}
