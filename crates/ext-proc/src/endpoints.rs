//! Static endpoint lists for use without Kubernetes.

use pointsman::Endpoint;

/// Parses `--endpoints`: comma-separated `[name=]host[:port]` entries. Entries without a
/// port get each of `target_ports` (the reference's `--endpoint-target-ports`); names default
/// to `host:port`.
///
/// ```
/// use pointsman_extproc::endpoints::parse_endpoints;
/// let e = parse_endpoints("a=10.0.0.1:8000,10.0.0.2", &[9000])?;
/// assert_eq!(e[0].name(), "a");
/// assert_eq!(e[1].host_port(), "10.0.0.2:9000");
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// A message naming the bad entry.
pub fn parse_endpoints(list: &str, target_ports: &[u16]) -> Result<Vec<Endpoint>, String> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = match entry.split_once('=') {
            Some((n, a)) => (Some(n.trim()), a.trim()),
            None => (None, entry),
        };
        let bad = |why: &str| {
            format!(
                "--endpoints entry {entry:?}: {why}; expected [name=]host:port, e.g. vllm-0=10.0.0.7:8000"
            )
        };
        let (host, ports): (&str, Vec<u16>) = match addr.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => {
                let port = p.parse::<u16>().map_err(|_| bad("bad port"))?;
                if port == 0 {
                    return Err(bad("port 0"));
                }
                (h, vec![port])
            }
            _ if !target_ports.is_empty() => (addr, target_ports.to_vec()),
            _ => return Err(bad("no port and no --endpoint-target-ports")),
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        for port in ports {
            let default_name = format!("{host}:{port}");
            let name = match name {
                Some(n) if !n.is_empty() => {
                    if target_ports.len() > 1 && !addr.contains(':') {
                        format!("{n}-{port}")
                    } else {
                        n.to_string()
                    }
                }
                _ => default_name,
            };
            out.push(Endpoint::new(name, host, port));
        }
    }
    let mut names: Vec<&str> = out.iter().map(Endpoint::name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("--endpoints: name {:?} is used twice", w[0]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        assert!(parse_endpoints("10.0.0.1", &[]).is_err());
        assert!(parse_endpoints("10.0.0.1:x", &[]).is_err());
        assert!(parse_endpoints("10.0.0.1:0", &[]).is_err());
        assert!(parse_endpoints("a=1.1.1.1:1,a=1.1.1.2:1", &[]).is_err());
        assert_eq!(parse_endpoints("1.1.1.1", &[1, 2]).unwrap().len(), 2);
        assert!(parse_endpoints("", &[]).unwrap().is_empty());
    }
}
