//! Where a subscription may send: never into the network coursewire runs in, unless an
//! operator allows it (`delivery.allowed_networks`). Without this guard anyone holding a
//! token that may create subscriptions could make coursewire POST to the cloud metadata
//! service (`169.254.169.254`), to loopback ports, or to any private host, and read from
//! the failure text which of them answer.
//!
//! The check runs twice: when a subscription is created (its host resolved, every address
//! judged, 422 naming the class and the setting that allows it), and on every connection,
//! after DNS resolution ([`GuardedResolver`], so a name that later resolves elsewhere — DNS
//! rebinding — is caught too). IP-literal URLs never reach a resolver, so [`TargetPolicy::
//! check_url`]'s literal check runs before each send as well. Redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Why an address is not a public unicast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    LinkLocal,
    Private,
    UniqueLocal,
    Multicast,
    Unspecified,
    Broadcast,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Private => "private",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
        }
    }

    /// The class of `ip`, or `None` for a public unicast address.
    pub fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                if v4.is_loopback() {
                    Some(AddressClass::Loopback)
                } else if v4.is_link_local() {
                    Some(AddressClass::LinkLocal)
                // 100.64.0.0/10 (carrier-grade NAT) is as internal as RFC 1918.
                } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                    Some(AddressClass::Private)
                } else if v4.is_multicast() {
                    Some(AddressClass::Multicast)
                } else if v4.is_broadcast() {
                    Some(AddressClass::Broadcast)
                } else if v4.is_unspecified() || a == 0 {
                    Some(AddressClass::Unspecified)
                } else {
                    None
                }
            }
            IpAddr::V6(v6) => {
                // ::ffff:127.0.0.1 reaches 127.0.0.1.
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Self::of(IpAddr::V4(v4));
                }
                if v6.is_loopback() {
                    Some(AddressClass::Loopback)
                } else if v6.is_unicast_link_local() {
                    Some(AddressClass::LinkLocal)
                } else if v6.is_unique_local() {
                    Some(AddressClass::UniqueLocal)
                } else if v6.is_multicast() {
                    Some(AddressClass::Multicast)
                } else if v6.is_unspecified() {
                    Some(AddressClass::Unspecified)
                } else {
                    None
                }
            }
        }
    }
}

/// A target address that may not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} resolves to {ip}, a {} address; subscriptions may only target public addresses \
     unless delivery.allowed_networks (env COURSEWIRE_DELIVERY_ALLOWED_NETWORKS) lists it",
    class.as_str()
)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub class: AddressClass,
}

/// Which addresses subscriptions may target: public unicast ones, and those in the allowed
/// networks.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// From `delivery.allowed_networks` (CIDRs, or single addresses).
    pub fn new(allowed_networks: &[String]) -> Result<Self, String> {
        let allowed = allowed_networks
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "delivery.allowed_networks: {text:?} is not a CIDR such as 10.0.0.0/8"
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// `Ok` when `ip` may be connected to.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some(class) = AddressClass::of(ip) else {
            return Ok(());
        };
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        Err(Refused {
            host: host.to_owned(),
            ip,
            class,
        })
    }

    /// The check before each send: an IP-literal host is judged here (a name is judged by
    /// [`GuardedResolver`] when the connection resolves it).
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check_ip(&v4.to_string(), IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_ip(&v6.to_string(), IpAddr::V6(v6)),
            _ => Ok(()),
        }
    }

    /// The check at creation: every address the host resolves to now must be allowed. A
    /// name that does not resolve yet (a subscriber still being set up) is taken: every
    /// connection judges what it resolves to then.
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        self.check_literal(url)?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let Ok(addrs) = tokio::net::lookup_host((host, port)).await else {
            return Ok(());
        };
        for addr in addrs {
            self.check_ip(host, addr.ip())?;
        }
        Ok(())
    }
}

/// The delivery client's DNS resolver: the system's, with every address the policy refuses
/// taken out; a name left with none fails to connect, and the failure says why.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check_ip(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused.get_or_insert(why);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(why)) => Err(Box::new(why) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<&'static str> {
        AddressClass::of(text.parse().unwrap()).map(AddressClass::as_str)
    }

    #[test]
    fn internal_addresses_are_classed() {
        for (ip, expected) in [
            ("127.0.0.1", Some("loopback")),
            ("169.254.169.254", Some("link-local")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("private")),
            ("224.0.0.1", Some("multicast")),
            ("0.0.0.0", Some("unspecified")),
            ("255.255.255.255", Some("broadcast")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fd00::1", Some("unique-local")),
            ("ff02::1", Some("multicast")),
            ("::", Some("unspecified")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
            ("100.128.0.1", None),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn allowed_networks_let_internal_targets_through() {
        let policy = TargetPolicy::new(&["127.0.0.0/8".into(), "fd00::5".into()]).unwrap();
        assert!(policy.check_ip("h", "127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check_ip("h", "fd00::5".parse().unwrap()).is_ok());
        let refused = policy
            .check_ip("h", "10.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(refused.class, AddressClass::Private);
        assert!(refused.to_string().contains("delivery.allowed_networks"));
        assert!(TargetPolicy::new(&["not-a-net".into()]).is_err());
        assert!(
            TargetPolicy::default()
                .check_ip("h", "8.8.8.8".parse().unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let policy = TargetPolicy::default();
        let url = reqwest::Url::parse("http://localhost:9/hook").unwrap();
        let err = policy.check_url(&url).await.unwrap_err();
        assert_eq!(err.class, AddressClass::Loopback, "{err}");
        let unknown = reqwest::Url::parse("https://not-yet.invalid/hook").unwrap();
        assert!(
            policy.check_url(&unknown).await.is_ok(),
            "judged when it resolves"
        );
        let literal = reqwest::Url::parse("http://[::1]:22/").unwrap();
        assert!(policy.check_literal(&literal).is_err());
        let allowed = TargetPolicy::new(&["127.0.0.0/8".into(), "::1/128".into()]).unwrap();
        assert!(allowed.check_url(&url).await.is_ok());
    }
}
