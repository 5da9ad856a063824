/* Finding the packets in a buffer of file data: pcap records and pcapng blocks -> fm_desc entries.

The one sequential step of reading a capture (each record's or block's length gives the next one's offset),
so it is C; everything else about the file (headers, section and interface blocks, what to do with damage) is
Python (opentap/pcap/). Files are untrusted: every length is checked against the buffer before it is used, a
length that cannot be right stops the scan where it is (the caller says where and why), and a packet is only
described once all its bytes are in the buffer. */
#include <string.h>

#include "scan.h"

static uint32_t u32(const uint8_t *p, int big_endian) {
    if (big_endian)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static uint16_t u16(const uint8_t *p, int big_endian) {
    return big_endian ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

size_t fm_scan_pcap(const uint8_t *data, size_t n, const fm_pcap_format *fmt, fm_desc *out, size_t room,
                    fm_scan_result *r) {
    memset(r, 0, sizeof *r);
    size_t at = 0, count = 0;
    int big = fmt->big_endian;
    while (at + 16 <= n) {
        uint32_t caplen = u32(data + at + 8, big);
        if (caplen > fmt->max_caplen) { /* no snaplen allows it: we are not at a record boundary */
            r->stop = FM_STOP_BAD;
            r->bad = caplen;
            break;
        }
        if (caplen > n - at - 16) { /* the record goes on past the buffer */
            r->need = at + 16 + caplen - n;
            break;
        }
        if (count == room) /* the caller counted first (out == NULL) and gave exactly this room */
            break;
        uint32_t wire = u32(data + at + 12, big);
        if (out) {
            fm_desc *d = &out[count];
            d->ts = (int64_t)u32(data + at, big) * 1000000000LL +
                    (int64_t)u32(data + at + 4, big) * (fmt->nanosecond ? 1 : 1000);
            d->off = (uint32_t)(at + 16);
            d->caplen = caplen;
            d->wirelen = wire;
            d->linktype = fmt->linktype;
            d->iface = 0;
        }
        r->captured += caplen;
        r->wire += wire;
        count++;
        at += 16 + (size_t)caplen;
    }
    r->end = at;
    return count;
}

static const uint64_t POW10[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
                                    1000000000000ull, 10000000000000ull, 100000000000000ull,
                                    1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
                                    1000000000000000000ull, 10000000000000000000ull};

/* A timestamp in the interface's units -> ns since the epoch, saturating: a hostile file's 64-bit count must
   not overflow (undefined behaviour in C). */
static int64_t ng_time(const fm_ng_iface *ifc, uint64_t units) {
    __int128 ns;
    if (ifc->binary) /* (the Python side refuses exponents over 63; a shift of 128 or more would be undefined) */
        ns = ((__int128)units * 1000000000) >> (ifc->exponent > 63 ? 63 : ifc->exponent);
    else if (ifc->exponent <= 9) /* a table, not a loop: this runs for every packet */
        ns = (__int128)units * POW10[9 - ifc->exponent];
    else /* at most 10^19, the largest power of ten in 64 bits: finer units than 10^-28 s are taken as those */
        ns = (__int128)(units / POW10[ifc->exponent - 9 < 19 ? ifc->exponent - 9 : 19]);
    ns += (__int128)ifc->offset_ns;
    if (ns > INT64_MAX)
        return INT64_MAX;
    if (ns < INT64_MIN)
        return INT64_MIN;
    return (int64_t)ns;
}

size_t fm_scan_pcapng(const uint8_t *data, size_t n, const fm_ng_format *fmt, fm_desc *out, size_t room,
                      fm_scan_result *r) {
    memset(r, 0, sizeof *r);
    r->last_ts = fmt->last_ts;
    size_t at = 0, count = 0;
    int big = fmt->big_endian;
    while (at + 8 <= n) {
        uint32_t type = u32(data + at, big);
        if (type == FM_NG_SHB) { /* a new section may change the byte order: its length is in the new one */
            if (at + 12 > n)
                break;
            uint32_t bom = u32(data + at + 8, 0);
            if (bom != 0x1A2B3C4Du && bom != 0x4D3C2B1Au) {
                r->stop = FM_STOP_BAD;
                r->bad = FM_BAD_MAGIC;
                break;
            }
            big = bom == 0x4D3C2B1Au;
        }
        uint32_t len = u32(data + at + 4, big);
        if (len < 12 || len % 4 != 0 || len > fmt->max_block) {
            r->stop = FM_STOP_BAD;
            r->bad = FM_BAD_LENGTH;
            break;
        }
        if (len > n - at) {
            r->need = at + len - n;
            break;
        }
        if (u32(data + at + len - 4, big) != len) { /* the trailing copy of the length */
            r->stop = FM_STOP_BAD;
            r->bad = FM_BAD_TRAILER;
            break;
        }
        if (type == FM_NG_SHB || type == FM_NG_IDB) { /* a new section or interface: Python reads it */
            r->stop = FM_STOP_META;
            break;
        }
        uint32_t iface = 0, caplen = 0, wire = 0, body = 0; /* body: offset of the packet data in the block */
        int64_t ts = 0;
        int packet = 1;
        if (type == FM_NG_EPB || type == FM_NG_PB) {
            if (len < 32) {
                r->stop = FM_STOP_BAD;
                r->bad = FM_BAD_LENGTH;
                break;
            }
            iface = type == FM_NG_EPB ? u32(data + at + 8, big) : u16(data + at + 8, big);
            caplen = u32(data + at + 20, big);
            wire = u32(data + at + 24, big);
            body = 28;
            if (iface < fmt->ifaces_count) {
                uint64_t units = (uint64_t)u32(data + at + 12, big) << 32 | u32(data + at + 16, big);
                ts = ng_time(&fmt->ifaces[iface], units);
            }
        } else if (type == FM_NG_SPB) { /* no interface id (it is the first) and no timestamp */
            if (len < 16) {
                r->stop = FM_STOP_BAD;
                r->bad = FM_BAD_LENGTH;
                break;
            }
            wire = u32(data + at + 8, big);
            caplen = wire < len - 16 ? wire : len - 16;
            if (fmt->ifaces_count && fmt->ifaces[0].snaplen && caplen > fmt->ifaces[0].snaplen)
                caplen = fmt->ifaces[0].snaplen;
            body = 12;
            ts = r->last_ts; /* the packet before it is the best time there is */
        } else {
            packet = 0; /* statistics, name resolution, secrets, custom blocks: nothing to meter */
        }
        if (packet) {
            if (iface >= fmt->ifaces_count) {
                r->stop = FM_STOP_BAD;
                r->bad = FM_BAD_INTERFACE;
                break;
            }
            if (caplen > len - body - 4) { /* the data must fit inside the block */
                r->stop = FM_STOP_BAD;
                r->bad = FM_BAD_CAPLEN;
                break;
            }
            if (count == room)
                break;
            if (out) {
                fm_desc *d = &out[count];
                d->ts = ts;
                d->off = (uint32_t)(at + body);
                d->caplen = caplen;
                d->wirelen = wire;
                d->linktype = (uint16_t)fmt->ifaces[iface].linktype;
                d->iface = (uint16_t)iface;
            }
            r->last_ts = ts;
            r->captured += caplen;
            r->wire += wire;
            count++;
        }
        at += len;
    }
    r->end = at;
    return count;
}
