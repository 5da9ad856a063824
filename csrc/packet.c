/* One captured frame -> flow key and counters.

The frame is untrusted (this runs as root on whatever crosses a monitored interface, or on any file handed
to `opentap flows`), so every read is checked: link-layer and IP header fields against the captured length,
transport fields also against the IP datagram's own length (never from Ethernet padding or the next packet).
A header cut short leaves its fields 0; a frame without a whole, sane IP header is not IP. No allocation, no
recursion, and every loop has a fixed bound. */
#include <string.h>

#include "flow.h"

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_PPPOE_SESSION 0x8864
#define ETH_MPLS 0x8847
#define ETH_MPLS_MULTI 0x8848
#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057
#define PPP_MPLS 0x0281
#define PPP_MPLS_MULTI 0x0283
#define MAX_ENCAPS 16   /* VLAN tags, MPLS labels, PPPoE: nothing real stacks more */
#define PROTO_UNKNOWN 255 /* IANA's reserved protocol number: where the upper layer cannot be found */

/* Link types (the LINKTYPE_ numbers of pcap and pcapng files). */
enum {
    LT_NULL = 0, LT_ETHERNET = 1, LT_SLIP = 8, LT_PPP = 9, LT_RAW_BSD1 = 12, LT_RAW_BSD2 = 14, LT_PPP_HDLC = 50,
    LT_RAW = 101, LT_C_HDLC = 104, LT_LOOP = 108, LT_LINUX_SLL = 113, LT_IPV4 = 228, LT_IPV6 = 229,
    LT_LINUX_SLL2 = 276,
};

int fm_linktype_known(uint32_t lt) {
    switch (lt) {
    case LT_NULL: case LT_ETHERNET: case LT_SLIP: case LT_PPP: case LT_RAW_BSD1: case LT_RAW_BSD2: case LT_PPP_HDLC:
    case LT_RAW: case LT_C_HDLC: case LT_LOOP: case LT_LINUX_SLL: case LT_IPV4: case LT_IPV6:
    case LT_LINUX_SLL2:
        return 1;
    default:
        return 0;
    }
}

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

/* Where the IP header starts and which version it should be. */
typedef struct {
    uint32_t l3;
    int version; /* 4, 6, or 0: take it from the first nibble (raw IP, MPLS payloads) */
    uint16_t vlan;
} l3_at;

/* A PPP protocol field at f[at]: 1 byte when its low bit is set (protocol field compression), else 2. Returns
   the EtherType of what it announces (IPv4, IPv6, MPLS; -1: anything else) and moves *at past it. */
static int ppp_protocol(const uint8_t *f, uint32_t caplen, uint32_t *at) {
    if (*at + 1 > caplen)
        return -1;
    uint32_t proto;
    if (f[*at] & 1) {
        proto = f[*at];
        *at += 1;
    } else {
        if (*at + 2 > caplen)
            return -1;
        proto = be(f + *at, 2);
        *at += 2;
    }
    switch (proto) {
    case PPP_IPV4:
        return ETH_IPV4;
    case PPP_IPV6:
        return ETH_IPV6;
    case PPP_MPLS: case PPP_MPLS_MULTI:
        return ETH_MPLS;
    default:
        return -1;
    }
}

/* Follows an EtherType through VLAN tags, PPPoE sessions, MPLS label stacks and LLC/SNAP to an IP header.
   Returns 0 with *out set, or -1 (not IP, or cut short). */
static int from_ethertype(const uint8_t *f, uint32_t caplen, uint32_t ethertype, uint32_t at, l3_at *out,
                          int tagged) {
    for (int step = 0; step < MAX_ENCAPS; step++) {
        if (is_vlan_tag(ethertype)) { /* 802.1Q, 802.1ad and legacy QinQ: the outer id is the flow's VLAN */
            if (at + 4 > caplen)
                return -1;
            if (!tagged) {
                out->vlan = (uint16_t)(be(f + at, 2) & 0x0FFF);
                tagged = 1;
            }
            ethertype = be(f + at + 2, 2);
            at += 4;
        } else if (ethertype == ETH_PPPOE_SESSION) { /* ver/type, code, session id, length; then PPP */
            at += 6;
            int next = ppp_protocol(f, caplen, &at);
            if (next < 0)
                return -1;
            ethertype = (uint32_t)next;
        } else if (ethertype == ETH_MPLS || ethertype == ETH_MPLS_MULTI) {
            /* label stack entries of 4 bytes up to the bottom-of-stack bit; the payload is not labelled with its
               protocol, so an IP header is recognised by its version nibble */
            int bottom = 0;
            for (int labels = 0; labels < MAX_ENCAPS && !bottom; labels++) {
                if (at + 4 > caplen)
                    return -1;
                bottom = f[at + 2] & 1;
                at += 4;
            }
            if (!bottom)
                return -1;
            out->l3 = at;
            out->version = 0;
            return 0;
        } else if (ethertype < 0x0600) { /* an 802.3 length: LLC, and SNAP with an EtherType after it */
            if (at + 8 > caplen || f[at] != 0xAA || f[at + 1] != 0xAA || f[at + 2] != 0x03)
                return -1;
            ethertype = be(f + at + 6, 2);
            at += 8;
        } else if (ethertype == ETH_IPV4 || ethertype == ETH_IPV6) {
            out->l3 = at;
            out->version = ethertype == ETH_IPV4 ? 4 : 6;
            return 0;
        } else {
            return -1;
        }
    }
    return -1;
}

/* The link layer: where the IP header is, and the MACs it names. Returns -1 when the frame carries no IP. */
static int link_layer(uint32_t lt, const uint8_t *f, uint32_t caplen, l3_at *out, fm_packet *p) {
    memset(out, 0, sizeof *out);
    switch (lt) {
    case LT_ETHERNET:
        if (caplen >= 6)
            p->dmac = mac_at(f);
        if (caplen >= 12)
            p->smac = mac_at(f + 6);
        if (caplen < 14)
            return -1;
        return from_ethertype(f, caplen, be(f + 12, 2), 14, out, 0);
    case LT_LINUX_SLL: /* packet type, ARPHRD type, address length, 8 address bytes, protocol */
        if (caplen < 16)
            return -1;
        if (be(f + 4, 2) == 6)
            p->smac = mac_at(f + 6);
        return from_ethertype(f, caplen, be(f + 14, 2), 16, out, 0);
    case LT_LINUX_SLL2: /* protocol, reserved, ifindex, ARPHRD type, packet type, address length, address */
        if (caplen < 20)
            return -1;
        if (f[11] == 6)
            p->smac = mac_at(f + 12);
        return from_ethertype(f, caplen, be(f, 2), 20, out, 0);
    case LT_RAW: case LT_RAW_BSD1: case LT_RAW_BSD2:
        return 0; /* l3 0, version from the header */
    case LT_IPV4: case LT_IPV6:
        out->version = lt == LT_IPV4 ? 4 : 6;
        return 0;
    case LT_SLIP: /* libpcap's 16-byte pseudo-header (direction, compression state), then the IP header */
        out->l3 = 16;
        return 0;
    case LT_NULL: case LT_LOOP: { /* a 4-byte address family: the writer's byte order (NULL), big-endian (LOOP) */
        if (caplen < 4)
            return -1;
        uint32_t family = be(f, 4);
        if (lt == LT_NULL && (family & 0xFFFF) == 0) /* written little-endian */
            family = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
        out->l3 = 4;
        if (family == 2) /* AF_INET everywhere */
            out->version = 4;
        else if (family == 10 || family == 24 || family == 28 || family == 30) /* AF_INET6: Linux, BSDs, macOS */
            out->version = 6;
        else
            return -1;
        return 0;
    }
    case LT_PPP: case LT_PPP_HDLC: { /* address 0xFF and control 0x03 may be there, then the protocol */
        uint32_t at = 0;
        if (caplen >= 2 && f[0] == 0xFF && f[1] == 0x03)
            at = 2;
        int next = ppp_protocol(f, caplen, &at);
        if (next < 0)
            return -1;
        return from_ethertype(f, caplen, (uint32_t)next, at, out, 0);
    }
    case LT_C_HDLC: /* Cisco HDLC: address, control, EtherType */
        if (caplen < 4)
            return -1;
        return from_ethertype(f, caplen, be(f + 2, 2), 4, out, 0);
    default:
        return -1;
    }
}

/* Whether an IPv6 hop-by-hop header at f[at] (bounded by end) holds a Jumbo Payload option (RFC 2675). */
static int has_jumbo(const uint8_t *f, uint32_t at, uint32_t end) {
    if (at + 2 > end)
        return 0;
    uint32_t stop = at + (f[at + 1] + 1u) * 8, i = at + 2;
    if (stop > end)
        stop = end;
    while (i < stop) { /* options: Pad1 is one byte, every other is type, length, data */
        if (f[i] == 0) {
            i++;
            continue;
        }
        if (i + 2 > stop)
            return 0;
        if (f[i] == 0xC2)
            return 1;
        i += 2u + f[i + 1];
    }
    return 0;
}

/* Follows IPv6 extension headers (hop-by-hop, routing, destination options, fragment) to the upper-layer
   protocol, reading only inside [.., end). AH (51) is the protocol, as for IPv4 and as tshark and softflowd
   report it. Sets *l4 and the fragment flags. A chain that runs past the datagram (or the captured bytes) gives
   PROTO_UNKNOWN: never an extension header's own number. The chain is followed as far as it goes, as tshark
   does (libpcap's tests have one of ~100 headers): each header moves on by at least 8 bytes, so the loop ends
   within (end - *l4) / 8 steps. */
static uint8_t ipv6_upper(const uint8_t *f, uint32_t end, uint8_t nh, uint32_t *l4, int *fragment, int *later) {
    for (;;) {
        int simple = nh == 0 || nh == 43 || nh == 60, frag = nh == 44;
        if (!simple && !frag)
            return nh;
        uint32_t at = *l4;
        if (at + 2 > end)
            return PROTO_UNKNOWN;
        uint8_t next = f[at];
        *l4 = at + (simple ? (f[at + 1] + 1u) * 8 : 8);
        if (at + 8 > end || *l4 > end) { /* the header is cut: its next-header field is all there is (tshark's
                                             reading too), and is the protocol unless it names another header */
            int more = next == 0 || next == 43 || next == 60 || next == 44;
            return more ? PROTO_UNKNOWN : next;
        }
        if (frag) {
            *fragment = 1;
            if ((be(f + at + 2, 2) >> 3) != 0) {
                *later = 1;
                return next; /* a later fragment: the rest is payload, its protocol is the fragment's */
            }
        }
        nh = next;
    }
}

int fm_parse(uint32_t linktype, const uint8_t *f, uint32_t caplen, uint32_t wirelen, fm_packet *p) {
    memset(p, 0, sizeof *p);
    if (!fm_linktype_known(linktype))
        return 0;
    l3_at where;
    if (link_layer(linktype, f, caplen, &where, p) != 0)
        return 1;
    uint32_t l3 = where.l3;
    if (l3 >= caplen)
        return 1;
    int version = f[l3] >> 4;
    if (where.version != 0 && version != where.version)
        return 1;
    /* what the frame held from the IP header on: what a TSO / BIG TCP packet counts */
    uint32_t held = wirelen > l3 && wirelen >= caplen ? wirelen - l3 : caplen - l3;
    uint32_t l4, end; /* end: just past the IP datagram's bytes that were captured */
    int later = 0, fragment = 0;
    fm_key *k = &p->key;
    if (version == 4 && l3 + 20 <= caplen) {
        uint32_t ihl = (f[l3] & 0x0Fu) * 4, total = be(f + l3 + 2, 2);
        if (ihl < 20) /* a header length below 5 words is not IPv4: its ports would be read from inside it */
            return 1;
        if (total == 0) { /* TSO / BIG TCP (RFC 2675's idea for IPv4): the length is the frame's */
            total = held;
        } else if (total < ihl) {
            return 1; /* shorter than its own header: not a datagram */
        }
        k->ip = 4;
        p->tos = f[l3 + 1];
        p->ip_bytes = total;
        uint32_t frag = be(f + l3 + 6, 2);
        fragment = (frag & 0x3FFF) != 0;
        later = (frag & 0x1FFF) != 0;
        k->proto = f[l3 + 9];
        memcpy(k->src + 12, f + l3 + 12, 4);
        memcpy(k->dst + 12, f + l3 + 16, 4);
        l4 = l3 + ihl;
        end = total < caplen - l3 ? l3 + total : caplen;
    } else if (version == 6 && l3 + 40 <= caplen) {
        uint32_t payload = be(f + l3 + 4, 2);
        uint8_t nh = f[l3 + 6];
        end = caplen;
        if (payload == 0 && nh == 0 && has_jumbo(f, l3 + 40, caplen)) {
            p->ip_bytes = held; /* a jumbogram (BIG TCP): what the frame holds */
        } else {
            p->ip_bytes = payload + 40;
            if (payload + 40 < caplen - l3)
                end = l3 + 40 + payload;
        }
        k->ip = 6;
        p->tos = (uint8_t)(be(f + l3, 4) >> 20);
        memcpy(k->src, f + l3 + 8, 16);
        memcpy(k->dst, f + l3 + 24, 16);
        l4 = l3 + 40;
        k->proto = ipv6_upper(f, end, nh, &l4, &fragment, &later);
    } else {
        return 1;
    }
    p->is_ip = 1;
    p->fragment = (uint8_t)fragment;
    k->vlan = where.vlan;
    if (later)
        return 1; /* no transport header: a port-less flow of its own */
    uint8_t proto = k->proto;
    if (proto == 6 || proto == 17 || proto == 132) {
        if (l4 + 4 <= end) {
            k->sport = (uint16_t)be(f + l4, 2);
            k->dport = (uint16_t)be(f + l4 + 2, 2);
        }
        if (proto == 6 && l4 + 14 <= end)
            p->tcp_flags = f[l4 + 13];
    } else if ((proto == 1 || proto == 58) && l4 + 2 <= end) {
        k->dport = (uint16_t)be(f + l4, 2); /* type and code: type * 256 + code is the big-endian 16-bit word */
    }
    return 1;
}
