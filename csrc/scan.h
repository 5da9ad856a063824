/* scan.c: packets in a buffer of pcap or pcapng data. */
#ifndef OPENTAP_SCAN_H
#define OPENTAP_SCAN_H

#include "flow.h"

enum { FM_STOP_END = 0, FM_STOP_META = 1, FM_STOP_BAD = 2 }; /* why a scan stopped where it did */
enum { FM_BAD_LENGTH = 1, FM_BAD_TRAILER = 2, FM_BAD_INTERFACE = 3, FM_BAD_CAPLEN = 4, FM_BAD_MAGIC = 5 }; /* pcapng damage */

#define FM_NG_SHB 0x0A0D0D0Au
#define FM_NG_IDB 1u
#define FM_NG_PB 2u
#define FM_NG_SPB 3u
#define FM_NG_EPB 6u

typedef struct {
    size_t end;  /* just past the last whole record or block scanned */
    size_t need; /* bytes the record or block at end still lacks (0: not even its header is whole) */
    int stop;    /* FM_STOP_*: END (the data ran out), META (a section or interface block at end), BAD */
    uint32_t bad; /* pcap: the impossible caplen; pcapng: FM_BAD_* */
    uint64_t captured, wire; /* sums over the packets described */
    int64_t last_ts;         /* pcapng: the newest packet's time, for simple packet blocks, which have none */
} fm_scan_result;

typedef struct {
    int big_endian, nanosecond;
    uint32_t linktype, max_caplen;
} fm_pcap_format;

/* An interface of a pcapng section, as opentap/pcap/pcapng.py packs it (IFACE there): keep in step. */
typedef struct {
    int64_t offset_ns; /* if_tsoffset */
    uint32_t linktype, snaplen;
    uint8_t binary, exponent; /* if_tsresol: units of 2^-exponent (binary) or 10^-exponent seconds */
    uint8_t pad[6];
} fm_ng_iface;

_Static_assert(sizeof(fm_ng_iface) == 24, "fm_ng_iface is packed by Python as 24 bytes");

typedef struct {
    int big_endian;
    const fm_ng_iface *ifaces;
    size_t ifaces_count;
    uint32_t max_block;
    int64_t last_ts;
} fm_ng_format;

/* Each returns how many packets it found, describing at most `room` of them in out (out NULL: count only).
   r is only right for a call whose room was not reached: count first, then fill. */
size_t fm_scan_pcap(const uint8_t *data, size_t n, const fm_pcap_format *fmt, fm_desc *out, size_t room,
                    fm_scan_result *r);
size_t fm_scan_pcapng(const uint8_t *data, size_t n, const fm_ng_format *fmt, fm_desc *out, size_t room,
                      fm_scan_result *r);

#endif
