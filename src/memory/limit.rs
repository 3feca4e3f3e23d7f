//! The default of `limits.memory_budget`: the memory limit of the cgroup the process runs in
//! (cgroup v1 or v2, as a container runtime or Kubernetes `resources.limits.memory` sets it),
//! and the one function that turns the configured value, that limit or neither into the
//! budget in effect, with a text saying where the number came from.
//!
//! Detection only reads files (`/proc/self/cgroup`, `/proc/self/mountinfo`, the cgroup
//! filesystem), always below a root directory passed in, so tests point it at fixture trees.
//! Anything unreadable or malformed means "no limit found", never an error or a panic: the
//! relay then runs with the fixed default. This module does not enforce the budget
//! ([`super::budget`] does), does not decide what a message costs ([`super`] does), and does
//! not validate the result against `limits.message_size` (the configuration does).

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Which cgroup hierarchy the limit was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The per-controller hierarchies (`memory.limit_in_bytes`).
    V1,
    /// The unified hierarchy (`memory.max`).
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// A memory limit found for this process's cgroup: the smallest along its ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// The hierarchy it came from.
    pub version: CgroupVersion,
}

/// The budget when none is configured and no container limit is found.
pub const DEFAULT_BUDGET: usize = 1 << 30;

/// The share of the container's memory limit the budget takes by default, in percent.
///
/// Why 70%: the budget counts only message bytes; the rest of the limit is the process's fixed
/// base (the binary and its libraries, TLS sessions, per-connection read buffers, the
/// allocator's own overhead and fragmentation), and a margin that was measured to keep the
/// process below the limit, where the kernel would otherwise kill it, with every session
/// holding a message at once.
pub const CGROUP_SHARE_PERCENT: u64 = 70;

/// cgroup v1 writes "no limit" as the largest page-aligned `i64` (9223372036854771712); any
/// value this large is no limit in practice either.
const UNLIMITED_FROM: u64 = 1 << 62;

/// Ancestors examined at most while walking up (real hierarchies are a handful deep).
const MAX_DEPTH: usize = 64;

/// The memory limit of the cgroup this process runs in, if there is one.
pub fn memory_limit() -> Option<CgroupLimit> {
    memory_limit_under(Path::new("/"))
}

/// [`memory_limit`] with every file read below `root` instead of `/`: `root/proc/self/cgroup`,
/// `root/proc/self/mountinfo` and the cgroup mounts below `root`.
///
/// cgroup v1's memory controller wins when the process is in one (on a hybrid host the
/// unified hierarchy carries no memory controller); otherwise the unified (v2) hierarchy.
pub fn memory_limit_under(root: &Path) -> Option<CgroupLimit> {
    let cgroups = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string(root.join("proc/self/mountinfo")).ok()?;
    let cgroups = parse_cgroups(&cgroups);
    let mounts = parse_mountinfo(&mountinfo);

    let v1 = || {
        let line = cgroups
            .iter()
            .find(|c| c.id != "0" && c.controllers.split(',').any(|c| c == "memory"))?;
        let candidates: Vec<&Mount> = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "memory"))
            .collect();
        let mount = pick_mount(&candidates, &line.path)?;
        walk_up(root, mount, &line.path, "memory.limit_in_bytes").map(|bytes| CgroupLimit {
            bytes,
            version: CgroupVersion::V1,
        })
    };
    let v2 = || {
        let line = cgroups
            .iter()
            .find(|c| c.id == "0" && c.controllers.is_empty())?;
        let candidates: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
        let mount = pick_mount(&candidates, &line.path)?;
        walk_up(root, mount, &line.path, "memory.max").map(|bytes| CgroupLimit {
            bytes,
            version: CgroupVersion::V2,
        })
    };
    v1().or_else(v2)
}

/// The memory budget in effect, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveBudget {
    /// Bytes of messages all sessions may hold at once.
    pub bytes: usize,
    /// Where the number came from.
    pub origin: BudgetOrigin,
}

/// Where the memory budget in effect came from. Its `Display` is the text `check-config` and
/// the start-up log show: `set by limits.memory_budget`, `70% of the cgroup v1 memory limit
/// 2.5 GiB` or `default, no container memory limit found`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetOrigin {
    /// `limits.memory_budget` is set.
    Configured,
    /// [`CGROUP_SHARE_PERCENT`] of this container memory limit.
    Cgroup(CgroupLimit),
    /// Neither: [`DEFAULT_BUDGET`].
    Default,
}

impl fmt::Display for BudgetOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetOrigin::Configured => f.write_str("set by limits.memory_budget"),
            BudgetOrigin::Cgroup(limit) => write!(
                f,
                "{CGROUP_SHARE_PERCENT}% of the cgroup {} memory limit {}",
                limit.version,
                human_size(limit.bytes)
            ),
            BudgetOrigin::Default => f.write_str("default, no container memory limit found"),
        }
    }
}

impl fmt::Display for EffectiveBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", human_size(self.bytes as u64), self.origin)
    }
}

/// The budget in effect: `configured` (bytes of `limits.memory_budget`) when set, else a
/// share of this process's cgroup memory limit, else [`DEFAULT_BUDGET`]. The cgroup files are
/// only read when nothing is configured.
pub fn effective_budget(configured: Option<usize>) -> EffectiveBudget {
    let limit = match configured {
        Some(_) => None,
        None => memory_limit(),
    };
    effective_budget_with(configured, limit)
}

/// [`effective_budget`] with the container limit given instead of detected.
pub fn effective_budget_with(
    configured: Option<usize>,
    limit: Option<CgroupLimit>,
) -> EffectiveBudget {
    match (configured, limit) {
        (Some(bytes), _) => EffectiveBudget {
            bytes,
            origin: BudgetOrigin::Configured,
        },
        (None, Some(limit)) => {
            let share = u128::from(limit.bytes) * u128::from(CGROUP_SHARE_PERCENT) / 100;
            EffectiveBudget {
                bytes: usize::try_from(share).unwrap_or(usize::MAX),
                origin: BudgetOrigin::Cgroup(limit),
            }
        }
        (None, None) => EffectiveBudget {
            bytes: DEFAULT_BUDGET,
            origin: BudgetOrigin::Default,
        },
    }
}

/// `bytes` for people: `512 B`, `179.2 MiB`, `1.75 GiB` (binary units, at most two decimals).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    let number = format!("{value:.2}");
    let number = number.trim_end_matches('0').trim_end_matches('.');
    format!("{number} {unit}")
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
struct CgroupLine {
    id: String,
    controllers: String,
    path: String,
}

fn parse_cgroups(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            // The path is last and may itself contain ':'.
            let mut fields = line.splitn(3, ':');
            let id = fields.next()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            path.starts_with('/').then(|| CgroupLine {
                id: id.to_string(),
                controllers: controllers.to_string(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The fields of one `/proc/self/mountinfo` line that matter here.
struct Mount {
    /// Field 4: the directory of the mounted filesystem that appears at `point` (for a
    /// cgroup filesystem, the cgroup the mount shows; `/` unless the host bind-mounted a
    /// sub-hierarchy).
    root: String,
    /// Field 5: where it is mounted.
    point: String,
    fstype: String,
    super_options: String,
}

/// `id parent major:minor root point options [optional fields...] - fstype source super`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut left = left.split(' ');
            let root = left.nth(3)?;
            let point = left.next()?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let super_options = right.nth(1).unwrap_or("");
            Some(Mount {
                root: unescape(root),
                point: unescape(point),
                fstype: fstype.to_string(),
                super_options: super_options.to_string(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0')));
        match octal.and_then(|n| u8::try_from(n).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Of the mounts of the right kind, the one that shows `path` (its root is a prefix of it),
/// else the first: inside a container the path may not be under any mount's root.
fn pick_mount<'a>(candidates: &[&'a Mount], path: &str) -> Option<&'a Mount> {
    candidates
        .iter()
        .find(|m| relative_to_root(path, &m.root).is_some())
        .or_else(|| candidates.first())
        .copied()
}

/// `path` minus the mount's `root`, when the path lies below it.
fn relative_to_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// `root` joined with an absolute path from the process's view of the filesystem.
fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// The smallest limit in `file` from the process's cgroup up to the mount's top directory.
///
/// The cgroup's directory is the mount point plus the cgroup path minus the mount's root.
/// Without a cgroup namespace, a container sees its host path in `/proc/self/cgroup` while
/// its cgroup mount shows only its own cgroup; that directory then does not exist and the
/// mount's top directory is the container's cgroup (what the JVM and Go's automemlimit do).
/// Walking up finds a limit set on a parent, such as a Kubernetes pod above its containers.
fn walk_up(root: &Path, mount: &Mount, path: &str, file: &str) -> Option<u64> {
    let top = under(root, &mount.point);
    let start = relative_to_root(path, &mount.root)
        .filter(|rel| {
            Path::new(rel)
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        })
        .map(|rel| under(&top, rel))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| top.clone());

    let mut smallest: Option<u64> = None;
    let mut dir = start.as_path();
    for _ in 0..MAX_DEPTH {
        if let Some(bytes) = read_limit(&dir.join(file)) {
            smallest = Some(smallest.map_or(bytes, |s| s.min(bytes)));
        }
        if dir == top {
            break;
        }
        match dir.parent() {
            Some(parent) if parent.starts_with(&top) => dir = parent,
            _ => break,
        }
    }
    smallest
}

/// A limit file's value; `max` (v2), a value of 2^62 or more (v1's "unlimited"), 0, or
/// anything unreadable is no limit.
fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes > 0 && bytes < UNLIMITED_FROM).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A fixture filesystem root: `files` are (path below the root, contents).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        dir
    }

    const V2_MOUNTINFO: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
";

    fn limit(bytes: u64, version: CgroupVersion) -> Option<CgroupLimit> {
        Some(CgroupLimit { bytes, version })
    }

    #[test]
    fn v2_with_a_limit() {
        let root = tree(&[
            ("proc/self/cgroup", "0::/kubepods/pod1/c1\n"),
            ("proc/self/mountinfo", V2_MOUNTINFO),
            ("sys/fs/cgroup/kubepods/pod1/c1/memory.max", "268435456\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(256 * MIB, CgroupVersion::V2)
        );
    }

    #[test]
    fn v2_max_is_no_limit() {
        let root = tree(&[
            ("proc/self/cgroup", "0::/user.slice/session-1.scope\n"),
            ("proc/self/mountinfo", V2_MOUNTINFO),
            (
                "sys/fs/cgroup/user.slice/session-1.scope/memory.max",
                "max\n",
            ),
            ("sys/fs/cgroup/user.slice/memory.max", "max\n"),
        ]);
        assert_eq!(memory_limit_under(root.path()), None);
    }

    #[test]
    fn v2_smaller_parent_limit_wins() {
        let root = tree(&[
            ("proc/self/cgroup", "0::/kubepods/burstable/pod1/c1\n"),
            ("proc/self/mountinfo", V2_MOUNTINFO),
            (
                "sys/fs/cgroup/kubepods/burstable/pod1/c1/memory.max",
                "max\n",
            ),
            (
                "sys/fs/cgroup/kubepods/burstable/pod1/memory.max",
                "104857600\n",
            ),
            ("sys/fs/cgroup/kubepods/burstable/memory.max", "max\n"),
            ("sys/fs/cgroup/kubepods/memory.max", "1073741824\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(100 * MIB, CgroupVersion::V2)
        );
    }

    #[test]
    fn v2_in_a_cgroup_namespace_reads_the_mount_root() {
        let root = tree(&[
            ("proc/self/cgroup", "0::/\n"),
            ("proc/self/mountinfo", V2_MOUNTINFO),
            ("sys/fs/cgroup/memory.max", "536870912\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(512 * MIB, CgroupVersion::V2)
        );
    }

    #[test]
    fn v1_with_a_limit() {
        let root = tree(&[
            (
                "proc/self/cgroup",
                "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
            ),
            ("proc/self/mountinfo", V1_MOUNTINFO),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                "268435456\n",
            ),
            (
                "sys/fs/cgroup/memory/docker/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(256 * MIB, CgroupVersion::V1)
        );
    }

    #[test]
    fn v1_unlimited() {
        let root = tree(&[
            ("proc/self/cgroup", "4:memory:/process_api/861b\n0::/\n"),
            ("proc/self/mountinfo", V1_MOUNTINFO),
            (
                "sys/fs/cgroup/memory/process_api/861b/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/process_api/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(memory_limit_under(root.path()), None);
    }

    #[test]
    fn v1_host_path_not_in_the_container_mount_uses_the_mount_root() {
        // podman/docker without a cgroup namespace: the host path is listed, but the mount
        // shows only the container's own cgroup at its top.
        let root = tree(&[
            (
                "proc/self/cgroup",
                "4:memory:/machine.slice/libpod-0123abcd.scope\n",
            ),
            (
                "proc/self/mountinfo",
                "700 650 0:32 /machine.slice/libpod-0123abcd.scope /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
            ),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(256 * MIB, CgroupVersion::V1)
        );

        // The same without the mount's root field matching: still the mount root.
        let root = tree(&[
            (
                "proc/self/cgroup",
                "4:memory:/machine.slice/libpod-0123abcd.scope\n",
            ),
            ("proc/self/mountinfo", V1_MOUNTINFO),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "134217728\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(128 * MIB, CgroupVersion::V1)
        );
    }

    #[test]
    fn the_mount_root_field_is_taken_off_the_cgroup_path() {
        // The mount shows /kubepods at /sys/fs/cgroup: /kubepods/pod1/c1 is pod1/c1 there.
        let root = tree(&[
            ("proc/self/cgroup", "0::/kubepods/pod1/c1\n"),
            (
                "proc/self/mountinfo",
                "35 22 0:30 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            ),
            ("sys/fs/cgroup/pod1/c1/memory.max", "max\n"),
            ("sys/fs/cgroup/pod1/memory.max", "209715200\n"),
            ("sys/fs/cgroup/memory.max", "max\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(200 * MIB, CgroupVersion::V2)
        );
    }

    #[test]
    fn hybrid_uses_the_v1_memory_controller() {
        let mountinfo = format!(
            "{V1_MOUNTINFO}41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        );
        let root = tree(&[
            (
                "proc/self/cgroup",
                "9:name=systemd:/\n4:memory:/app\n0::/\n",
            ),
            ("proc/self/mountinfo", &mountinfo),
            (
                "sys/fs/cgroup/memory/app/memory.limit_in_bytes",
                "2684354560\n",
            ),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("sys/fs/cgroup/unified/cgroup.procs", "1\n"),
        ]);
        assert_eq!(
            memory_limit_under(root.path()),
            limit(2560 * MIB, CgroupVersion::V1)
        );
    }

    #[test]
    fn missing_files_mean_no_limit() {
        let empty = tree(&[]);
        assert_eq!(memory_limit_under(empty.path()), None);
        let no_mountinfo = tree(&[("proc/self/cgroup", "0::/a\n")]);
        assert_eq!(memory_limit_under(no_mountinfo.path()), None);
        let no_limit_file = tree(&[
            ("proc/self/cgroup", "0::/a\n"),
            ("proc/self/mountinfo", V2_MOUNTINFO),
        ]);
        assert_eq!(memory_limit_under(no_limit_file.path()), None);
        let no_mount = tree(&[
            ("proc/self/cgroup", "4:memory:/a\n0::/a\n"),
            (
                "proc/self/mountinfo",
                "22 1 259:1 / / rw - ext4 /dev/root rw\n",
            ),
        ]);
        assert_eq!(memory_limit_under(no_mount.path()), None);
    }

    #[test]
    fn odd_files_never_panic() {
        for (cgroup, mountinfo, value) in [
            ("garbage", "garbage", "garbage"),
            ("0::", "- - -", "-1"),
            ("0::/../../etc", V2_MOUNTINFO, "12abc"),
            (
                "4:memory:/a\n",
                "1 2 3 \\777 /sys/fs/cgroup/memory - cgroup x memory",
                "0",
            ),
            ("\n\n:::\n", "\\", ""),
        ] {
            let root = tree(&[
                ("proc/self/cgroup", cgroup),
                ("proc/self/mountinfo", mountinfo),
                ("sys/fs/cgroup/memory.max", value),
                ("sys/fs/cgroup/memory/memory.limit_in_bytes", value),
            ]);
            assert_eq!(
                memory_limit_under(root.path()),
                None,
                "{cgroup:?} {value:?}"
            );
        }
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape("/sys/fs/my\\040cgroup"), "/sys/fs/my cgroup");
        assert_eq!(unescape("/a\\134b"), "/a\\b");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn this_host_does_not_panic() {
        let _ = memory_limit();
    }

    #[test]
    fn effective_budget_origins() {
        let configured = effective_budget_with(Some(5 << 20), limit(256 * MIB, CgroupVersion::V2));
        assert_eq!(configured.bytes, 5 << 20);
        assert_eq!(
            configured.to_string(),
            "5 MiB (set by limits.memory_budget)"
        );

        let share = effective_budget_with(None, limit(2560 * MIB, CgroupVersion::V1));
        assert_eq!(share.bytes, 1792 << 20);
        assert_eq!(
            share.to_string(),
            "1.75 GiB (70% of the cgroup v1 memory limit 2.5 GiB)"
        );

        let small = effective_budget_with(None, limit(256 * MIB, CgroupVersion::V1));
        assert_eq!(
            small.to_string(),
            "179.2 MiB (70% of the cgroup v1 memory limit 256 MiB)"
        );

        let default = effective_budget_with(None, None);
        assert_eq!(default.bytes, DEFAULT_BUDGET);
        assert_eq!(
            default.to_string(),
            "1 GiB (default, no container memory limit found)"
        );
        assert_eq!(effective_budget(Some(7)).bytes, 7);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(48 * MIB), "48 MiB");
        assert_eq!(human_size(48 * MIB * 7 / 10), "33.6 MiB");
        assert_eq!(human_size(u64::MAX), "16384 PiB");
    }
}
