/* The open-flow table: open addressing with linear probing, keyed by the raw bytes of fm_key.

A packet joins its key's open flow unless a rule says the flow is over: the gap since its last packet is
longer than the idle timeout, it began longer than the active timeout ago, or a FIN/RST ended it; then the
flow is finished (appended to `done`) and the packet opens a new one. Expiry applies the same two timeouts
at a given time. Every rule looks at packet times only, so where batches begin or end changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "flow.h"

#define TCP_FIN 0x01
#define TCP_RST 0x04

uint64_t fm_hash(const fm_key *k) {
    uint64_t w[5], h = 0x9E3779B97F4A7C15ull;
    memcpy(w, k, sizeof w);
    for (int i = 0; i < 5; i++) {
        h = (h ^ w[i]) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h;
}

_Static_assert(sizeof(fm_key) == 40, "fm_key is hashed as five 64-bit words");

int fm_table_init(fm_table *t, int64_t active_ns, int64_t idle_ns) {
    memset(t, 0, sizeof *t);
    t->capacity = 1024;
    t->slots = calloc(t->capacity, sizeof(fm_flow));
    t->active_ns = active_ns;
    t->idle_ns = idle_ns;
    return t->slots ? 0 : -1;
}

void fm_table_free(fm_table *t) {
    free(t->slots);
    free(t->done);
    memset(t, 0, sizeof *t);
}

static int finish(fm_table *t, const fm_flow *f) {
    if (t->done_count == t->done_capacity) {
        size_t cap = t->done_capacity ? t->done_capacity * 2 : 1024;
        fm_flow *grown = realloc(t->done, cap * sizeof(fm_flow));
        if (!grown)
            return -1;
        t->done = grown;
        t->done_capacity = cap;
    }
    t->done[t->done_count] = *f;
    t->done[t->done_count].used = 0;
    t->done[t->done_count].order = (uint32_t)t->done_count; /* finishing order, for a stable sort */
    t->done_count++;
    return 0;
}

static fm_flow *find_hashed(fm_flow *slots, size_t capacity, const fm_key *k, uint64_t hash) {
    size_t mask = capacity - 1, i = hash & mask;
    while (slots[i].used && memcmp(&slots[i].key, k, sizeof *k) != 0)
        i = (i + 1) & mask;
    return &slots[i];
}

static fm_flow *find(fm_flow *slots, size_t capacity, const fm_key *k) {
    return find_hashed(slots, capacity, k, fm_hash(k));
}

void fm_table_prefetch(const fm_table *t, uint64_t hash) {
    const fm_flow *slot = &t->slots[hash & (t->capacity - 1)];
    __builtin_prefetch(slot, 1);
    __builtin_prefetch((const char *)slot + sizeof *slot - 1, 1); /* a slot may span two cache lines */
}

/* Linear probing's deletion: later entries of the same probe run move back into the hole, so a lookup
   never stops early at an empty slot (no tombstones to clean up). */
static void remove_slot(fm_table *t, fm_flow *slot) {
    size_t mask = t->capacity - 1, hole = (size_t)(slot - t->slots), i = hole;
    for (;;) {
        i = (i + 1) & mask;
        if (!t->slots[i].used)
            break;
        size_t home = fm_hash(&t->slots[i].key) & mask;
        /* the entry at i may fill the hole if its home is not cyclically within (hole, i] */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            t->slots[hole] = t->slots[i];
            hole = i;
        }
    }
    t->slots[hole].used = 0;
    t->count--;
}

static int grow(fm_table *t) {
    size_t capacity = t->capacity * 2;
    fm_flow *slots = calloc(capacity, sizeof(fm_flow));
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->capacity; i++)
        if (t->slots[i].used)
            *find(slots, capacity, &t->slots[i].key) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->capacity = capacity;
    return 0;
}

static int over(const fm_table *t, const fm_flow *f, int64_t now) {
    return now - f->last > t->idle_ns || now - f->first > t->active_ns;
}

int fm_table_add(fm_table *t, const fm_packet *p) {
    if (t->count * 2 >= t->capacity && grow(t) != 0)
        return -1;
    fm_flow *f = find_hashed(t->slots, t->capacity, &p->key, p->hash);
    if (f->used && over(t, f, p->ts)) { /* (a FIN/RST already took its flow out of the table) */
        if (finish(t, f) != 0)
            return -1;
        f->used = 0; /* the slot is reused at once for the same key: no need to move the probe run */
        t->count--;
    }
    if (!f->used) {
        memset(f, 0, sizeof *f);
        f->key = p->key;
        f->first = f->last = p->ts;
        f->smac = p->smac;
        f->dmac = p->dmac;
        f->tos = p->tos;
        f->used = 1;
        t->count++;
    }
    if (p->ts < f->first)
        f->first = p->ts;
    if (p->ts > f->last)
        f->last = p->ts;
    f->packets++;
    f->bytes += p->ip_bytes;
    f->flags |= p->tcp_flags;
    if (p->key.proto == 6 && (p->tcp_flags & (TCP_FIN | TCP_RST))) {
        f->ended = 1;
        if (finish(t, f) != 0)
            return -1;
        remove_slot(t, f);
    }
    return 0;
}

static int finish_where(fm_table *t, int all, int64_t now) {
    for (size_t i = 0; i < t->capacity;) {
        fm_flow *f = &t->slots[i];
        if (f->used && (all || over(t, f, now))) {
            if (finish(t, f) != 0)
                return -1;
            remove_slot(t, f); /* may move a later entry into slot i: look at it again */
            continue;
        }
        i++;
    }
    return 0;
}

int fm_table_expire(fm_table *t, int64_t now_ns) { return finish_where(t, 0, now_ns); }

int fm_table_flush(fm_table *t) { return finish_where(t, 1, 0); }
