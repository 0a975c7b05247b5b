//! The open-file limit: every kernel socket is a file descriptor, so 100k
//! idle connections need RLIMIT_NOFILE well above the usual 1024.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// What [`raise_nofile_limit`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit now in force: descriptors this process may open.
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft RLIMIT_NOFILE to at least `want` descriptors if the
/// process may (raising the hard limit needs CAP_SYS_RESOURCE and stays
/// within `fs.nr_open`), and otherwise to the hard limit. Returns the
/// limits in force; the caller decides whether they suffice.
pub fn raise_nofile_limit(want: u64) -> std::io::Result<NofileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return Ok(NofileLimit {
            soft: want,
            hard: want,
        });
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    Ok(NofileLimit { soft: hard, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_least_at_the_old_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let got = raise_nofile_limit(1).unwrap();
        assert_eq!(got.soft, hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
    }
}
