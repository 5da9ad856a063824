/* One Ethernet frame -> flow key and counters. Every read is bounds-checked against the captured length:
   a header cut short (snaplen, a runt) leaves its fields 0, and a frame without a whole IP header is not IP. */
#include <string.h>

#include "flow.h"

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD

static uint32_t be(const uint8_t *p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t mac_at(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = (v << 8) | p[i];
    return v;
}

static int is_vlan_tag(uint32_t ethertype) {
    return ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100;
}

/* Follows IPv6 extension headers to the upper-layer protocol; sets *l4 and *later (a non-first fragment,
   whose payload has no transport header). At most 6 headers, as nothing real stacks more. */
static uint8_t ipv6_upper(const uint8_t *f, uint32_t caplen, uint32_t *l4, int *fragment, int *later) {
    uint8_t nh = f[*l4 - 40 + 6];
    for (int i = 0; i < 6; i++) {
        int simple = nh == 0 || nh == 43 || nh == 60, frag = nh == 44, ah = nh == 51;
        if (!(simple || frag || ah))
            break;
        uint32_t at = *l4;
        if (at + 1 > caplen)
            return 255; /* the chain is cut: the protocol is unknown */
        uint8_t next = f[at];
        uint32_t len = at + 2 <= caplen ? f[at + 1] : 0;
        *l4 = at + (simple ? (len + 1) * 8 : ah ? (len + 2) * 4 : 8);
        nh = next;
        if (frag) {
            *fragment = 1;
            if (at + 4 <= caplen && (be(f + at + 2, 2) >> 3) != 0) {
                *later = 1;
                break;
            }
        }
    }
    return nh;
}

void fm_parse(const uint8_t *f, uint32_t caplen, fm_packet *p) {
    memset(p, 0, sizeof *p);
    if (caplen >= 6)
        p->dmac = mac_at(f);
    if (caplen >= 12)
        p->smac = mac_at(f + 6);
    if (caplen < 14)
        return;
    uint32_t ethertype = be(f + 12, 2), l3 = 14;
    uint16_t vlan = 0;
    for (int tags = 0; tags < 2 && is_vlan_tag(ethertype); tags++) { /* 802.1Q, and QinQ's outer tag */
        if (l3 + 4 > caplen)
            return;
        if (tags == 0)
            vlan = be(f + l3, 2) & 0x0FFF; /* the outer id is the flow's VLAN */
        ethertype = be(f + l3 + 2, 2);
        l3 += 4;
    }
    uint32_t l4;
    int later = 0, fragment = 0;
    fm_key *k = &p->key;
    if (ethertype == ETH_IPV4 && l3 + 20 <= caplen && f[l3] >> 4 == 4) {
        k->ip = 4;
        p->tos = f[l3 + 1];
        p->ip_bytes = be(f + l3 + 2, 2);
        uint32_t frag = be(f + l3 + 6, 2);
        fragment = (frag & 0x3FFF) != 0;
        later = (frag & 0x1FFF) != 0;
        k->proto = f[l3 + 9];
        memcpy(k->src + 12, f + l3 + 12, 4);
        memcpy(k->dst + 12, f + l3 + 16, 4);
        l4 = l3 + (f[l3] & 0x0F) * 4;
    } else if (ethertype == ETH_IPV6 && l3 + 40 <= caplen && f[l3] >> 4 == 6) {
        k->ip = 6;
        p->tos = (uint8_t)(be(f + l3, 4) >> 20);
        p->ip_bytes = be(f + l3 + 4, 2) + 40;
        memcpy(k->src, f + l3 + 8, 16);
        memcpy(k->dst, f + l3 + 24, 16);
        l4 = l3 + 40;
        k->proto = ipv6_upper(f, caplen, &l4, &fragment, &later);
    } else {
        return;
    }
    p->is_ip = 1;
    p->fragment = (uint8_t)fragment;
    k->vlan = vlan;
    if (later)
        return; /* no transport header: a port-less flow of its own */
    uint8_t proto = k->proto;
    if (proto == 6 || proto == 17 || proto == 132) {
        if (l4 + 2 <= caplen) {
            k->sport = be(f + l4, 2);
            if (l4 + 4 <= caplen)
                k->dport = be(f + l4 + 2, 2);
        }
        if (proto == 6 && l4 + 14 <= caplen)
            p->tcp_flags = f[l4 + 13];
    } else if ((proto == 1 || proto == 58) && l4 + 2 <= caplen) {
        k->dport = be(f + l4, 2); /* type and code: type * 256 + code is the big-endian 16-bit word */
    }
}
