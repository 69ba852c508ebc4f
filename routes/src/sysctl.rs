//! Kernel parameters under `/proc/sys`. Files under `/proc/sys/net` belong
//! to the network namespace of the thread that opens them, so these calls
//! act on the caller's namespace.

use std::path::PathBuf;

use crate::error::RoutesError;

/// Set a sysctl. `key` is either a path below `/proc/sys`
/// (`"net/ipv4/conf/tt1a2b/proxy_arp"`, safe for interface names with dots)
/// or the dotted form when it has no `/` (`"net.ipv4.ip_forward"`). Writes
/// only when the value differs.
pub fn set_sysctl(key: &str, value: &str) -> Result<(), RoutesError> {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    if rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(RoutesError::invalid(
            format!("setting sysctl {key}"),
            "invalid key",
        ));
    }
    let path = PathBuf::from("/proc/sys").join(rel);
    if let Ok(current) = std::fs::read_to_string(&path)
        && current.trim() == value
    {
        return Ok(());
    }
    std::fs::write(&path, value)
        .map_err(|e| RoutesError::io(format!("setting sysctl {} = {value}", path.display()), e))
}

/// Read a sysctl (same key forms as [`set_sysctl`]), trimmed.
pub fn get_sysctl(key: &str) -> Result<String, RoutesError> {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let path = PathBuf::from("/proc/sys").join(rel);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| RoutesError::io(format!("reading sysctl {}", path.display()), e))
}

/// Host-side settings for a container veth: `proxy_arp=1`,
/// `neigh/<if>/proxy_delay=0` (else the first ARP reply comes ~0.2 s late),
/// `forwarding=1`, and the global `net.ipv4.ip_forward=1`.
pub(crate) fn configure_host_veth(ifname: &str) -> Result<(), RoutesError> {
    set_sysctl("net/ipv4/ip_forward", "1")?;
    set_sysctl(&format!("net/ipv4/conf/{ifname}/proxy_arp"), "1")?;
    set_sysctl(&format!("net/ipv4/neigh/{ifname}/proxy_delay"), "0")?;
    set_sysctl(&format!("net/ipv4/conf/{ifname}/forwarding"), "1")?;
    Ok(())
}
