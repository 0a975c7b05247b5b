#!/usr/bin/env python3
"""CPU time per request, by core, thread and code path, from a perf profile.

Usage (see docs/PERFORMANCE.md, "What bounds the fast path on veth"):

    perf record -a -g -e cpu-clock -F 4000 -o cell.data -- sleep 2
    perf script -i cell.data -F comm,cpu,ip,sym > cell.txt
    scripts/perf-per-request.py cell.txt REQUESTS [SAMPLE_HZ=4000]

REQUESTS is the number of requests completed while perf sampled. Every
sample is put in the first matching category below, checked against its
whole stack, so a peer's receive that veth runs inside our send syscall
counts as the peer's receive and not as our send.
"""
import collections
import re
import sys

# (category, kernel functions any of which on the stack selects it), in order.
KERNEL_PATHS = [
    ("kernel: veth NAPI, XDP prog + copy into a UMEM",
     {"veth_xdp_rcv", "__xsk_rcv", "xsk_generic_rcv", "xsk_rcv", "__xsk_map_redirect",
      "xdp_do_redirect", "xdp_do_generic_redirect"}),
    ("kernel: IP/TCP receive (softirq)",
     {"tcp_v4_rcv", "ip_rcv", "process_backlog", "__netif_receive_skb_one_core",
      "ip_local_deliver_finish"}),
    ("kernel: skb free",
     {"skb_defer_free_flush", "napi_consume_skb", "kfree_skb_list_reason", "__kfree_skb",
      "consume_skb", "skb_release_data"}),
    ("kernel: AF_XDP TX syscall (skb alloc, copy, veth xmit)", {"__xsk_generic_xmit", "xsk_sendmsg"}),
    ("kernel: TCP send syscall", {"tcp_sendmsg", "tcp_sendmsg_locked"}),
    ("kernel: TCP recv syscall", {"tcp_recvmsg", "__x64_sys_recvfrom", "sock_recvmsg"}),
    ("kernel: epoll_wait/poll (incl. sleep/wake)",
     {"do_epoll_wait", "__x64_sys_epoll_wait", "do_sys_poll", "__x64_sys_poll"}),
    ("kernel: scheduler", {"schedule", "__schedule", "try_to_wake_up"}),
]

USER_PATHS = [
    ("user: engine (src/tcp)", ("xdp_tcp::tcp", "<xdp_tcp::tcp")),
    ("user: wire (parse/emit/checksum)", ("xdp_tcp::wire",)),
    ("user: runtime + xsk rings",
     ("xdp_tcp::runtime", "<xdp_tcp::xdp", "xdp_tcp::xdp", "xsk_ring", "crossbeam")),
    ("user: app / load generator",
     ("xdp_tcp::app", "<xdp_tcp::app", "xdp_tcp::load", "<xdp_tcp::load", "hdrhistogram",
      "xdp_tcp::kernel")),
]


def category(comm, frames):
    """frames: [(address, symbol)], innermost first."""
    if comm == "swapper":
        return "idle"
    syms = {s for _, s in frames}
    for name, funcs in KERNEL_PATHS:
        if syms & funcs or (name.startswith("kernel: veth NAPI")
                            and any(s.startswith("bpf_prog_") for s in syms)):
            return name
    if not frames:
        return "unknown"
    addr, leaf = frames[0]
    if addr.startswith("ffffffff"):
        return "kernel: other (" + leaf[:30] + ")"
    if "clock_gettime" in leaf or "Timespec" in leaf or "Instant" in leaf:
        return "user: clock"
    for name, prefixes in USER_PATHS:
        if leaf.startswith(prefixes):
            return name
    return "user: other (libc, memcpy, ...)"


def thread(comm):
    if comm.startswith("xdp-tcp-w"):
        return "fast worker"
    for prefix in ("kernel-serve", "kernel-load"):
        if comm.startswith(prefix):
            return prefix
    return comm


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, requests = sys.argv[1], float(sys.argv[2])
    hz = float(sys.argv[3]) if len(sys.argv) > 3 else 4000.0
    ns_per_sample = 1e9 / hz
    per = collections.defaultdict(collections.Counter)
    per_core = collections.Counter()
    with open(path) as f:
        text = f.read()
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
        if not lines:
            continue
        head = re.match(r"(.*?)\s+\[(\d+)\]", lines[0])
        if not head:
            continue
        comm, core = head.group(1).strip(), int(head.group(2))
        frames = []
        for line in lines[1:]:
            parts = line.split(None, 1)
            frames.append((parts[0], parts[1] if len(parts) > 1 else "?"))
        per[(core, thread(comm))][category(comm, frames)] += 1
        per_core[core] += 1
    for core in sorted(per_core):
        total = per_core[core]
        print(f"== core {core}: {total} samples")
        threads = sorted((k for k in per if k[0] == core), key=lambda k: -sum(per[k].values()))
        for key in threads:
            counts = per[key]
            n = sum(counts.values())
            if n / total < 0.02:
                continue
            print(f"  {key[1]:24s} {100 * n / total:5.1f}%  "
                  f"{n * ns_per_sample / requests:7.0f} ns/request")
            if key[1] == "idle":
                continue
            for name, v in counts.most_common():
                if v / total >= 0.005:
                    print(f"      {100 * v / total:5.1f}%  "
                          f"{v * ns_per_sample / requests:6.0f} ns/req  {name}")


if __name__ == "__main__":
    main()
