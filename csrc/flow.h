/* Shared types of the native flow meter (opentap._native). Layouts here are read by numpy: keep
   opentap/flows/meter.py's RECORD dtype in step with fm_flow. */
#ifndef OPENTAP_FLOW_H
#define OPENTAP_FLOW_H

#include <stddef.h>
#include <stdint.h>

/* Hashed and compared as raw bytes, so it has no padding holes and unused bytes are always zero.
   Addresses are in network order; an IPv4 address fills the last 4 of the 16 bytes. */
typedef struct {
    uint8_t src[16], dst[16];
    uint16_t sport, dport; /* ICMP/ICMPv6: sport 0, dport type * 256 + code (as nfdump shows it) */
    uint16_t vlan;         /* the outer 802.1Q/802.1ad id; 0 untagged */
    uint8_t proto, ip;     /* ip: 4 or 6 */
} fm_key;

typedef struct {
    int64_t first, last; /* ns since the epoch */
    int64_t packets, bytes;
    uint64_t smac, dmac; /* of the first packet */
    fm_key key;
    uint8_t flags; /* TCP flags ORed over the flow */
    uint8_t tos;   /* of the first packet */
    uint8_t ended; /* a FIN or RST closed it */
    uint8_t used;  /* the hash table slot holds a flow */
    uint32_t order; /* among finished flows: the order they finished in */
} fm_flow;

/* One decoded packet. */
typedef struct {
    fm_key key;
    int64_t ts;
    uint32_t ip_bytes; /* IPv4 total length, IPv6 payload length + 40: NetFlow's octetDeltaCount */
    uint64_t smac, dmac;
    uint8_t is_ip, fragment, tcp_flags, tos;
} fm_packet;

/* packet.c */
void fm_parse(const uint8_t *frame, uint32_t caplen, fm_packet *out);

/* table.c: open flows, keyed by fm_key; finished flows are appended to `done`. */
typedef struct {
    fm_flow *slots;
    size_t capacity, count; /* capacity is a power of two */
    fm_flow *done;
    size_t done_count, done_capacity;
    int64_t active_ns, idle_ns;
} fm_table;

int fm_table_init(fm_table *t, int64_t active_ns, int64_t idle_ns);
void fm_table_free(fm_table *t);
int fm_table_add(fm_table *t, const fm_packet *p);    /* 0, or -1 when out of memory */
int fm_table_expire(fm_table *t, int64_t now_ns);     /* idle or older than the active timeout at now */
int fm_table_flush(fm_table *t);                      /* every open flow */

/* csvfmt.c: nfdump 1.7 `-o csv` lines; returns the length written, or -1 when out of memory. */
typedef struct {
    char *buf;
    size_t len, cap;
} fm_text;

typedef struct { /* the last second formatted, per time column */
    int64_t second;
    int valid;
    char text[32];
} fm_clock;

int fm_csv_line(fm_text *out, const fm_flow *f, const char *proto_name, const char *written, fm_clock clock[2]);

#endif
