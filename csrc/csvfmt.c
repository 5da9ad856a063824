/* Flow records as nfdump 1.7 prints them with `-o csv` (see opentap/flows/nfcsv.py for the columns we fill
   and why the others hold nfdump's zero values). Formatting in Python cost more than metering. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "flow.h"

#define NS 1000000000LL

static const char MIDDLE[] = "0,0,0,0,0,0,0,0,0.0.0.0,0.0.0.0";  /* in,out,sas,das,smk,dmk,dtos,dir,nh,nhb */
static const char ZERO_MAC[] = "00:00:00:00:00:00";
static const char TAIL[] = "0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,"
                           "    0.000,    0.000,    0.000,0.0.0.0,0/0,0"; /* mpls1-10,cl,sl,al,ra,eng,exid */

size_t fm_csv_bound(size_t proto_name_len, size_t written_len) { return 512 + proto_name_len + written_len; }

static int reserve(const fm_text *out, size_t more) { return out->len + more <= out->cap ? 0 : -1; }

/* Appenders: the caller reserved room. snprintf with two dozen conversions per line cost more than the
   metering, so lines are put together from these. */
static char *put(char *at, const char *s, size_t n) {
    memcpy(at, s, n);
    return at + n;
}

static char *put_s(char *at, const char *s) { return put(at, s, strlen(s)); }

static char *put_u(char *at, unsigned long long v) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *at++ = digits[--n];
    return at;
}

static char *put_mac(char *at, uint64_t m) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 5; i >= 0; i--) {
        uint8_t b = (uint8_t)(m >> (8 * i));
        *at++ = hex[b >> 4];
        *at++ = hex[b & 15];
        if (i)
            *at++ = ':';
    }
    return at;
}

static char *put_flags(char *at, uint8_t f) {
    static const char letters[] = "CEUAPRSF"; /* bit 7 .. bit 0, nfdump's order */
    for (int i = 0; i < 8; i++)
        *at++ = f & (0x80 >> i) ? letters[i] : '.';
    return at;
}

static char *put_address(char *at, const fm_key *k, const uint8_t *addr) {
    if (k->ip == 4) { /* dotted quad by hand: glibc's inet_ntop formats IPv4 with sprintf */
        for (int i = 12; i < 16; i++) {
            at = put_u(at, addr[i]);
            if (i < 15)
                *at++ = '.';
        }
        return at;
    }
    char text[INET6_ADDRSTRLEN]; /* nfdump prints IPv6 addresses with inet_ntop too */
    inet_ntop(AF_INET6, addr, text, sizeof text);
    return put_s(at, text);
}

/* YYYY-mm-dd HH:MM:SS (UTC); flows share seconds, so the last one formatted is remembered */
static char *put_when(char *at, int64_t ns, fm_clock *cache) {
    int64_t s = ns >= 0 ? ns / NS : (ns - NS + 1) / NS;
    if (!cache->valid || cache->second != s) {
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cache->text, sizeof cache->text, "%Y-%m-%d %H:%M:%S", &tm);
        cache->second = s;
        cache->valid = 1;
    }
    return put_s(at, cache->text);
}

int fm_csv_line(fm_text *out, const fm_flow *f, const char *proto_name, const char *written, fm_clock clock[2]) {
    size_t room = fm_csv_bound(strlen(proto_name), strlen(written));
    if (reserve(out, room) != 0)
        return -1;
    char *start = out->buf + out->len, *at = start;
    at = put_when(at, f->first, &clock[0]);
    *at++ = ',';
    at = put_when(at, f->last, &clock[1]);
    *at++ = ',';
    /* nfdump keeps milliseconds: td is the difference of the two times in ms */
    unsigned long long ms = (unsigned long long)(f->last / 1000000 - f->first / 1000000);
    at = put_u(at, ms / 1000);
    *at++ = '.';
    *at++ = (char)('0' + ms % 1000 / 100);
    *at++ = (char)('0' + ms % 100 / 10);
    *at++ = (char)('0' + ms % 10);
    *at++ = ',';
    at = put_address(at, &f->key, f->key.src);
    *at++ = ',';
    at = put_address(at, &f->key, f->key.dst);
    *at++ = ',';
    at = put_u(at, f->key.sport);
    *at++ = ',';
    at = put_u(at, f->key.dport);
    *at++ = ',';
    at = put_s(at, proto_name);
    *at++ = ',';
    at = put_flags(at, f->flags);
    at = put(at, ",0,", 3); /* fwd */
    at = put_u(at, f->tos);
    *at++ = ',';
    at = put_u(at, (unsigned long long)f->packets);
    *at++ = ',';
    at = put_u(at, (unsigned long long)f->bytes);
    at = put(at, ",0,0,", 5); /* opkt, obyt */
    at = put(at, MIDDLE, sizeof MIDDLE - 1);
    *at++ = ',';
    at = put_u(at, f->key.vlan);
    at = put(at, ",0,", 3); /* dvln */
    at = put_mac(at, f->smac);
    *at++ = ',';
    at = put(at, ZERO_MAC, sizeof ZERO_MAC - 1);
    *at++ = ',';
    at = put_mac(at, f->dmac);
    *at++ = ',';
    at = put(at, ZERO_MAC, sizeof ZERO_MAC - 1);
    *at++ = ',';
    at = put(at, TAIL, sizeof TAIL - 1);
    *at++ = ',';
    at = put_s(at, written);
    *at++ = '\n';
    out->len += (size_t)(at - start);
    return (int)(at - start);
}
