// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_steer: hands the TCP flows xdp-tcp owns to AF_XDP sockets.
 *
 * A frame whose (destination IPv4 address, destination TCP port) is a key of
 * `ports`, or whose destination port lies in the range `client_ports` holds
 * for its destination address (the local ports of connections xdp-tcp
 * opens), is redirected to the AF_XDP socket registered in `xsks` at the
 * frame's receive queue. Everything else -- ARP, ICMP, IPv6, other protocols,
 * other ports, IPv4 fragments, truncated headers -- goes on to the kernel
 * (XDP_PASS) untouched. A frame for an owned port that arrives on a queue with
 * no socket falls back to XDP_PASS as well (bpf_redirect_map's default).
 *
 * counters (per CPU): 0 redirected, 1 passed, 2 malformed (truncated
 * Ethernet/IPv4/TCP headers or a bad IPv4 version/IHL; also passed).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* From include/net/ip.h (not part of the UAPI headers). */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define COUNTER_REDIRECTED 0
#define COUNTER_PASSED 1
#define COUNTER_MALFORMED 2
#define COUNTER_COUNT 3

/* Mirrored by `PortKey` in src/xdp/program.rs: 8 bytes, no implicit padding. */
struct port_key {
	__u32 addr; /* network order */
	__u16 port; /* network order */
	__u16 pad;  /* always 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct port_key);
	__type(value, __u8);
} ports SEC(".maps");

/* Mirrored by `client_range_value` in src/xdp/program.rs. Host order. */
struct client_range {
	__u16 lo;
	__u16 hi;
};

/*
 * Local port ranges owned for active opens, one per local address (network
 * order): a client owns tens of thousands of ports on each of several
 * addresses, which the exact `ports` map could not hold.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct client_range);
} client_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 index, int action)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	if (value)
		*value += 1; /* per-CPU slot: no atomic needed */
	return action;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	struct port_key key;
	__u32 ihl;
	int action;

	if ((void *)(eth + 1) > data_end)
		return count(COUNTER_MALFORMED, XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(COUNTER_PASSED, XDP_PASS);

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(COUNTER_MALFORMED, XDP_PASS);
	if (ip->version != 4)
		return count(COUNTER_MALFORMED, XDP_PASS);
	ihl = (__u32)ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return count(COUNTER_MALFORMED, XDP_PASS);
	if (ip->protocol != IPPROTO_TCP)
		return count(COUNTER_PASSED, XDP_PASS);
	/* Fragments (first, middle or last) are left to the kernel to reassemble. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return count(COUNTER_PASSED, XDP_PASS);

	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return count(COUNTER_MALFORMED, XDP_PASS);

	key.addr = ip->daddr;
	key.port = tcp->dest;
	key.pad = 0;
	if (!bpf_map_lookup_elem(&ports, &key)) {
		struct client_range *range;
		__u16 port = bpf_ntohs(tcp->dest);

		range = bpf_map_lookup_elem(&client_ports, &key.addr);
		if (!range || port < range->lo || port > range->hi)
			return count(COUNTER_PASSED, XDP_PASS);
	}

	/* XDP_PASS when no socket is registered for this queue. */
	action = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (action == XDP_REDIRECT)
		return count(COUNTER_REDIRECTED, action);
	return count(COUNTER_PASSED, action);
}

char LICENSE[] SEC("license") = "GPL";
