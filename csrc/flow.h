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
    uint64_t hash; /* of key (fm_hash), computed once: the meter prefetches the table slot with it */
    uint8_t is_ip, fragment, tcp_flags, tos;
} fm_packet;

/* Where one packet is in a buffer of file data, whatever the file format (pcap or pcapng): the readers
   (scan.c) write these, the meter and the Python readers take them. Layout read by opentap/pcap/pcapfile.py
   (DESC): keep them in step. */
typedef struct {
    int64_t ts;       /* ns since the epoch */
    uint32_t off;     /* of the packet data in the buffer */
    uint32_t caplen;  /* bytes captured, all inside the buffer */
    uint32_t wirelen; /* bytes on the wire */
    uint16_t linktype;
    uint16_t iface; /* pcapng interface index; 0 in pcap */
} fm_desc;

_Static_assert(sizeof(fm_desc) == 24, "fm_desc is read by Python as 24 bytes");

/* packet.c: a frame of the given link type (LINKTYPE_ number) -> key and counts; wirelen is what the
   frame held on the wire (what a TSO/BIG TCP packet, whose IP length field is 0, counts). Returns 1 when the
   link type is one we decode, 0 when not (the packet is then not IP). */
int fm_parse(uint32_t linktype, const uint8_t *frame, uint32_t caplen, uint32_t wirelen, fm_packet *out);
int fm_linktype_known(uint32_t linktype);

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
int fm_table_add(fm_table *t, const fm_packet *p);    /* 0, or -1 when out of memory; p->hash must be set */
uint64_t fm_hash(const fm_key *k);
void fm_table_prefetch(const fm_table *t, uint64_t hash); /* a hint that this slot is wanted soon */
int fm_table_expire(fm_table *t, int64_t now_ns);     /* idle or older than the active timeout at now */
int fm_table_flush(fm_table *t);                      /* every open flow */

/* csvfmt.c: nfdump 1.7 `-o csv` lines into a buffer the caller sized with fm_csv_bound (module.c: a bytes
   object); returns the length written, or -1 when the line would not fit. */
typedef struct {
    char *buf;
    size_t len, cap;
} fm_text;

/* the room fm_csv_line asks for, at most, for a line with this protocol name and written-at text */
size_t fm_csv_bound(size_t proto_name_len, size_t written_len);

typedef struct { /* the last second formatted, per time column */
    int64_t second;
    int valid;
    char text[32];
} fm_clock;

int fm_csv_line(fm_text *out, const fm_flow *f, const char *proto_name, const char *written, fm_clock clock[2]);

#endif
