//! Finding the binaries under test (and writing the do-nothing one the
//! attach bench's exec floor runs) and talking to a running agent and BIRD
//! over their control sockets without spawning a CLI per poll (a process
//! per 10 ms poll would cost more than what it measures).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The `tortie` binary (the lab harness's lookup: `TORTIE_BIN`, next to us,
/// or built with cargo).
pub fn tortie() -> Result<PathBuf> {
    Ok(tortie_lab::tortie::tortie_bin()?)
}

/// `tortie-cni` (cargo's std build): env `TORTIE_CNI_BIN`, else next to
/// `tortie`, else built with cargo.
pub fn tortie_cni() -> Result<PathBuf> {
    let t = tortie()?;
    find_or_build(
        "TORTIE_CNI_BIN",
        t.with_file_name("tortie-cni"),
        &["build", "-q", "-p", "tortie-agent", "--bin", "tortie-cni"],
    )
}

/// The installed `tortie-cni`: the no-libc build (docs/cni.md "Install"),
/// env `TORTIE_CNI_NOLIBC_BIN`, else `<target dir>/cni/tortie-cni`, else
/// built with cargo. `None` where it does not exist (not x86_64).
pub fn tortie_cni_nolibc() -> Result<Option<PathBuf>> {
    if !cfg!(target_arch = "x86_64") {
        return Ok(None);
    }
    let t = tortie()?;
    // <target>/<profile>/tortie -> <target>/cni/tortie-cni
    let target = t
        .parent()
        .and_then(Path::parent)
        .context("no target directory above tortie")?;
    let args = [
        "build",
        "-q",
        "--profile",
        "cni",
        "-p",
        "tortie-agent",
        "--bin",
        "tortie-cni",
        "--features",
        "nolibc",
        "--locked",
    ];
    find_or_build(
        "TORTIE_CNI_NOLIBC_BIN",
        target.join("cni/tortie-cni"),
        &args,
    )
    .map(Some)
}

/// `env` if set, else `path` if it is a file, else `cargo <args>` (when run
/// by cargo) and then `path`.
fn find_or_build(env: &str, path: PathBuf, args: &[&str]) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    if path.is_file() {
        return Ok(path);
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let st = std::process::Command::new(cargo)
            .args(args)
            .status()
            .with_context(|| format!("building {}", path.display()))?;
        if st.success() && path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "{} not found: build it (`cargo {}`) or set {env}",
        path.display(),
        args.join(" ")
    )
}

/// Writes the smallest static program there is into `dir` and returns its
/// path: one ELF64 `PT_LOAD` segment whose entry point calls `exit(0)`
/// (no libc, no dynamic loader, no relocation, no `CPUID`). Spawned like a
/// plugin, its wall time is what the kernel's part of a process per ADD
/// costs (`posix_spawn`, `execve`, exit, the parent's wait); a plugin's
/// VERSION exec minus this is its C runtime's and its own start-up.
/// Only for the architectures whose three instructions are written here.
pub fn do_nothing_elf(dir: &Path) -> Result<PathBuf> {
    // mov eax, 60 (exit); xor edi, edi; syscall
    #[cfg(target_arch = "x86_64")]
    let (machine, code): (u16, &[u8]) = (62, &[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    // mov x0, #0; mov x8, #93 (exit); svc #0
    #[cfg(target_arch = "aarch64")]
    let (machine, code): (u16, &[u8]) = (
        183,
        &[
            0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
        ],
    );
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    bail!("no do-nothing program for this architecture");
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        use std::os::unix::fs::PermissionsExt;
        const BASE: u64 = 0x40_0000;
        const EHDR: u16 = 64;
        const PHDR: u16 = 56;
        let len = u64::from(EHDR + PHDR) + code.len() as u64;
        let mut elf = Vec::with_capacity(len as usize);
        // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
        elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
        elf.extend_from_slice(&machine.to_le_bytes());
        elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
        elf.extend_from_slice(&(BASE + u64::from(EHDR + PHDR)).to_le_bytes()); // e_entry
        elf.extend_from_slice(&u64::from(EHDR).to_le_bytes()); // e_phoff
        elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
        elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        for half in [EHDR, PHDR, 1, 0, 0, 0] {
            // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
            elf.extend_from_slice(&half.to_le_bytes());
        }
        // The one program header: the whole file, read + execute, at BASE.
        elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
        elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R + X
        for word in [0, BASE, BASE, len, len, 0x1000u64] {
            // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            elf.extend_from_slice(&word.to_le_bytes());
        }
        elf.extend_from_slice(code);
        let path = dir.join("do-nothing");
        std::fs::write(&path, &elf).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }
}

/// `GET path` on the agent's API socket; the JSON body.
pub fn agent_get(socket: &Path, path: &str) -> Result<Value> {
    agent_call(socket, "GET", path, None)
}

/// `POST path` with a JSON body on the agent's API socket.
pub fn agent_post(socket: &Path, path: &str, body: &Value) -> Result<Value> {
    agent_call(socket, "POST", path, Some(body))
}

fn agent_call(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: tortie\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("agent answered without a header/body separator")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "{method} {path}: {} {body}",
            head.lines().next().unwrap_or("")
        );
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    serde_json::from_str(&body).with_context(|| format!("{method} {path}: bad JSON"))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `routes_received` summed over the agent's peers.
pub fn agent_routes_received(socket: &Path) -> Result<u64> {
    let v = agent_get(socket, "/v1/status")?;
    Ok(v.get("peers")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("routes_received").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0))
}

/// A connection to BIRD's control socket (what `birdc` speaks).
pub struct BirdCtl {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl BirdCtl {
    pub fn connect(socket: &Path) -> Result<BirdCtl> {
        let w = UnixStream::connect(socket)
            .with_context(|| format!("connecting to {}", socket.display()))?;
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = BirdCtl {
            r: BufReader::new(w.try_clone()?),
            w,
        };
        c.reply()?; // "0001 BIRD x ready."
        Ok(c)
    }

    /// Sends one command; returns the reply lines (codes stripped).
    pub fn cmd(&mut self, cmd: &str) -> Result<Vec<String>> {
        writeln!(self.w, "{cmd}")?;
        self.reply()
    }

    fn reply(&mut self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l)? == 0 {
                bail!("BIRD closed its control socket");
            }
            let l = l.trim_end_matches('\n');
            // "NNNN-text" continues, "NNNN text" ends, " text" continues.
            let b = l.as_bytes();
            if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) {
                lines.push(l[5..].to_string());
                if b[4] == b' ' {
                    if b[0] == b'8' || b[0] == b'9' {
                        bail!("BIRD: {}", &l[5..]);
                    }
                    return Ok(lines);
                }
            } else {
                lines.push(l.trim_start().to_string());
            }
        }
    }

    /// Routes protocol `proto` has imported into its tables (`show protocols
    /// all P`, "Routes: N imported", summed over its channels): O(1) for BIRD, unlike `show route
    /// count`, which walks the table and would slow the load it measures.
    pub fn imported(&mut self, proto: &str) -> Result<u64> {
        let lines = self.cmd(&format!("show protocols all {proto}"))?;
        Ok(parse_imported(&lines))
    }
}

impl BirdCtl {
    /// `BGP state:` of protocol `proto` ("Established", "Active", …).
    pub fn bgp_state(&mut self, proto: &str) -> Result<String> {
        let lines = self.cmd(&format!("show protocols all {proto}"))?;
        Ok(lines
            .iter()
            .find_map(|l| l.trim().strip_prefix("BGP state:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default())
    }
}

fn parse_imported(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Routes:"))
        .filter_map(|r| r.split_whitespace().next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_imported() {
        let l = vec![
            "Channel ipv4".to_string(),
            "State: UP".into(),
            "Routes:         2 imported, 0 exported, 2 preferred".into(),
        ];
        assert_eq!(parse_imported(&l), 2);
        assert_eq!(parse_imported(&[]), 0);
        // Two channels (IPv6 over an IPv4 session): both counted.
        let mut both = l.clone();
        both.extend([
            "Channel ipv6".to_string(),
            "Routes:         5 imported, 0 exported, 5 preferred".into(),
        ]);
        assert_eq!(parse_imported(&both), 7);
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
