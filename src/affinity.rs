//! Which cores threads may be pinned to: shared by the fast path's
//! workers, the kernel twins' threads and the bench's noise probe.
//!
//! `core_affinity` leaves a thread unpinned when the kernel refuses a core,
//! and aborts the process for an id past the size of a `cpu_set_t`; so a
//! core is checked against the ones this process may run on before use,
//! and a wrong `--cores` is an error that says what to pick instead.

use core_affinity::CoreId;

/// The cores this process may run on (its affinity mask), ascending.
pub fn allowed_cores() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// `wanted` as core ids, or an error naming the first one outside
/// `allowed`.
pub fn pinnable(wanted: &[usize], allowed: &[usize]) -> Result<Vec<CoreId>, String> {
    match wanted.iter().find(|id| !allowed.contains(id)) {
        Some(bad) => Err(format!(
            "--cores names core {bad}, which this process may not run on: pick from {allowed:?}"
        )),
        None => Ok(wanted.iter().map(|&id| CoreId { id }).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_outside_the_allowed_set_are_refused_by_name() {
        assert_eq!(
            pinnable(&[1, 0], &[0, 1]).unwrap(),
            vec![CoreId { id: 1 }, CoreId { id: 0 }]
        );
        let err = pinnable(&[0, 5000], &[0, 1]).unwrap_err();
        assert_eq!(
            err,
            "--cores names core 5000, which this process may not run on: pick from [0, 1]"
        );
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cores().is_empty());
    }
}
