/* opentap._native: the per-packet work of reading pcap data and metering flows, in C.

In pure Python plus numpy the meter ran at about half the speed of the softflowd -> nfcapd -> nfdump pipeline
it replaces (bench/flows.py); the issue asks for three times. Python keeps the orchestration: reading files,
live chunks, timeouts in seconds, statistics (opentap/flows/meter.py). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "structmember.h"

#include "flow.h"
#include "scan.h"

/* Runs a scan twice, without the GIL: once to count, once to fill a bytes object of exactly that many
   descriptors (one allocation). Returns the descriptors, or NULL with an exception set. */
typedef size_t (*scan_fn)(const uint8_t *, size_t, const void *, fm_desc *, size_t, fm_scan_result *);

static PyObject *run_scan(scan_fn scan, const Py_buffer *view, const void *fmt, fm_scan_result *r) {
    size_t count;
    fm_scan_result fill;
    Py_BEGIN_ALLOW_THREADS
    count = scan(view->buf, (size_t)view->len, fmt, NULL, SIZE_MAX, r);
    Py_END_ALLOW_THREADS
    PyObject *descs = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * sizeof(fm_desc)));
    if (!descs)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    scan(view->buf, (size_t)view->len, fmt, (fm_desc *)PyBytes_AS_STRING(descs), count, &fill);
    Py_END_ALLOW_THREADS
    return descs;
}

/* scan_pcap(buf, big_endian, nanosecond, linktype, max_caplen) -> (descs, end, need, bad_caplen, captured,
   wire): the whole records of buf as fm_desc entries; end: just past the last of them; need: how many bytes
   the partial record after it still lacks (0 when even its header is incomplete); bad_caplen: a caplen above
   max_caplen found at end (not a record boundary: the file is damaged), else 0; captured, wire: the sums of
   the records' caplen and orig_len. */
static PyObject *scan_pcap(PyObject *self, PyObject *args) {
    Py_buffer view;
    fm_pcap_format fmt;
    unsigned long linktype, max_caplen;
    if (!PyArg_ParseTuple(args, "y*ppkk", &view, &fmt.big_endian, &fmt.nanosecond, &linktype, &max_caplen))
        return NULL;
    fmt.linktype = (uint32_t)linktype;
    fmt.max_caplen = max_caplen > UINT32_MAX ? UINT32_MAX : (uint32_t)max_caplen;
    fm_scan_result r;
    PyObject *descs = run_scan((scan_fn)fm_scan_pcap, &view, &fmt, &r);
    PyBuffer_Release(&view);
    if (!descs)
        return NULL;
    return Py_BuildValue("NnnkKK", descs, (Py_ssize_t)r.end, (Py_ssize_t)r.need,
                         (unsigned long)(r.stop == FM_STOP_BAD ? r.bad : 0), (unsigned long long)r.captured,
                         (unsigned long long)r.wire);
}

/* scan_pcapng(buf, big_endian, ifaces, max_block, last_ts) -> (descs, end, need, stop, bad, captured, wire,
   last_ts): the packets of the blocks in buf (ifaces: the section's interfaces, packed); stops at a section
   or interface block (stop 1: the caller reads it and goes on after it), at a damaged block (stop 2, bad
   says how), or where the data ends (stop 0). */
static PyObject *scan_pcapng(PyObject *self, PyObject *args) {
    Py_buffer view, ifaces;
    fm_ng_format fmt;
    unsigned long max_block;
    long long last_ts;
    if (!PyArg_ParseTuple(args, "y*py*kL", &view, &fmt.big_endian, &ifaces, &max_block, &last_ts))
        return NULL;
    fmt.ifaces = ifaces.buf;
    fmt.ifaces_count = (size_t)ifaces.len / sizeof(fm_ng_iface);
    fmt.max_block = max_block > UINT32_MAX ? UINT32_MAX : (uint32_t)max_block;
    fmt.last_ts = last_ts;
    fm_scan_result r;
    PyObject *descs = run_scan((scan_fn)fm_scan_pcapng, &view, &fmt, &r);
    PyBuffer_Release(&view);
    PyBuffer_Release(&ifaces);
    if (!descs)
        return NULL;
    return Py_BuildValue("NnnikKKL", descs, (Py_ssize_t)r.end, (Py_ssize_t)r.need, r.stop, (unsigned long)r.bad,
                         (unsigned long long)r.captured, (unsigned long long)r.wire, (long long)r.last_ts);
}

typedef struct {
    PyObject_HEAD fm_table table;
    int busy; /* feed runs without the GIL: no other call may touch the table meanwhile */
    int64_t until_ns;
    long long clock, expired_at;
    long long expire_every; /* ns of packet time between expiry scans: a quarter of the idle timeout, at least 1 s */
    long long packets, ip_packets, ip_bytes, non_ip_packets, non_ip_bytes, fragments, first_ns;
    long long other_link_packets; /* of link types we do not decode (counted as non-IP too) */
} Meter;

static int Meter_init(Meter *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"active_ns", "idle_ns", "until_ns", NULL};
    long long active, idle, until = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LL|L", names, &active, &idle, &until))
        return -1;
    fm_table_free(&self->table);
    if (fm_table_init(&self->table, active, idle) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->until_ns = until;
    /* the scan walks the whole table: often enough that an idle flow is reported within a quarter of the idle
       timeout of packet time, rarely enough that it costs little */
    self->expire_every = idle / 4 > 1000000000LL ? idle / 4 : 1000000000LL;
    return 0;
}

static void Meter_dealloc(Meter *self) {
    fm_table_free(&self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *check(int rc) {
    if (rc != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static int claim(Meter *self) { /* called with the GIL held, so check-and-set is atomic */
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Meter is in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* One packet, in packet order: the window, the counters, expiry, the table. */
static int meter_one(Meter *self, const fm_desc *d, fm_packet *p, int known) {
    int64_t ts = d->ts;
    self->packets++;
    if (self->packets == 1 || ts < self->first_ns)
        self->first_ns = ts;
    if (ts > self->clock)
        self->clock = ts; /* also the metered span's end */
    if (self->clock - self->expired_at >= self->expire_every) {
        self->expired_at = self->clock;
        if (fm_table_expire(&self->table, self->clock) != 0)
            return -1;
    }
    if (!known)
        self->other_link_packets++;
    if (!p->is_ip) {
        self->non_ip_packets++;
        self->non_ip_bytes += d->wirelen;
        return 0;
    }
    p->ts = ts;
    self->ip_packets++;
    self->ip_bytes += p->ip_bytes;
    self->fragments += p->fragment;
    return fm_table_add(&self->table, p);
}

#define AHEAD 8 /* packets decoded ahead of the one metered: their table slots are fetched meanwhile */

/* feed(buf, descs): meter the packets of buf that descs (fm_desc entries, from a scan) describe.

Expiry runs here, between packets, whenever the newest packet time has moved expire_every past the last scan:
so where it happens depends only on the packets, never on how they were cut into calls (a packet whose time
goes backwards finds the same flows open whatever the block size). Packets are decoded AHEAD of the one
metered and their table slots prefetched, so the table's cache misses overlap with decoding. */
static PyObject *Meter_feed(Meter *self, PyObject *args) {
    Py_buffer buf, descs;
    int rc = 0;
    if (!PyArg_ParseTuple(args, "y*y*", &buf, &descs))
        return NULL;
    if (claim(self) != 0) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&descs);
        return NULL;
    }
    const uint8_t *data = buf.buf;
    const fm_desc *d = descs.buf;
    size_t count = (size_t)descs.len / sizeof(fm_desc);
    fm_packet ring[AHEAD];
    const fm_desc *which[AHEAD];
    int known[AHEAD];
    Py_BEGIN_ALLOW_THREADS
    size_t head = 0, queued = 0; /* the ring: the oldest decoded packet at head, then queued - 1 more */
    for (size_t i = 0; rc == 0 && (i < count || queued);) {
        if (i < count && queued < AHEAD) { /* decode one more */
            if (i + AHEAD < count) { /* and fetch the headers of a packet further on meanwhile */
                if ((uint64_t)d[i + AHEAD].off + 128 <= (uint64_t)buf.len) { /* (a hint: never out of bounds) */
                    __builtin_prefetch(data + d[i + AHEAD].off);
                    __builtin_prefetch(data + d[i + AHEAD].off + 64);
                }
            }
            const fm_desc *di = &d[i++];
            if ((uint64_t)di->off + di->caplen > (uint64_t)buf.len)
                continue; /* not from a scan of this buffer */
            if (self->until_ns >= 0 && di->ts > self->until_ns)
                continue; /* after the end of the capture window */
            size_t slot = (head + queued) % AHEAD;
            known[slot] = fm_parse(di->linktype, data + di->off, di->caplen, di->wirelen, &ring[slot]);
            which[slot] = di;
            if (ring[slot].is_ip) {
                ring[slot].hash = fm_hash(&ring[slot].key);
                fm_table_prefetch(&self->table, ring[slot].hash);
            }
            queued++;
            continue;
        }
        rc = meter_one(self, which[head], &ring[head], known[head]); /* meter the oldest, in packet order */
        head = (head + 1) % AHEAD;
        queued--;
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyBuffer_Release(&buf);
    PyBuffer_Release(&descs);
    return check(rc);
}

static PyObject *Meter_expire(Meter *self, PyObject *arg) {
    long long now = PyLong_AsLongLong(arg);
    if ((now == -1 && PyErr_Occurred()) || claim(self) != 0)
        return NULL;
    int rc = fm_table_expire(&self->table, now);
    self->busy = 0;
    return check(rc);
}

static PyObject *Meter_flush(Meter *self, PyObject *unused) {
    if (claim(self) != 0)
        return NULL;
    int rc = fm_table_flush(&self->table);
    self->busy = 0;
    return check(rc);
}

static int by_first(const void *a, const void *b) {
    const fm_flow *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order); /* ties: as they finished */
}

/* take() -> (records, count, packets, bytes): the flows finished since the last take, oldest first, as
   fm_flow records back to back, with their totals */
static PyObject *Meter_take(Meter *self, PyObject *unused) {
    if (self->busy)
        return PyErr_Format(PyExc_RuntimeError, "Meter is in use by another thread");
    fm_flow *done = self->table.done;
    size_t count = self->table.done_count;
    long long packets = 0, bytes = 0;
    if (count) /* qsort's pointer is declared non-null: called with NULL, the compiler may drop our check below */
        qsort(done, count, sizeof(fm_flow), by_first);
    for (size_t i = 0; i < count; i++) {
        packets += done[i].packets;
        bytes += done[i].bytes;
    }
    PyObject *out = Py_BuildValue("y#nLL", done ? (const char *)done : "", (Py_ssize_t)(count * sizeof(fm_flow)),
                                  (Py_ssize_t)count, packets, bytes);
    if (out)
        self->table.done_count = 0;
    return out;
}

static PyObject *Meter_stats(Meter *self, PyObject *unused) {
    return Py_BuildValue("{sLsLsLsLsLsLsLsLsLsnsL}", "packets", self->packets, "ip_packets", self->ip_packets,
                         "ip_bytes", self->ip_bytes, "non_ip_packets", self->non_ip_packets, "non_ip_bytes",
                         self->non_ip_bytes, "fragments", self->fragments, "first_ns", self->first_ns, "last_ns",
                         self->clock, "clock", self->clock, "open_flows",
                         (Py_ssize_t)self->table.count, "other_link_packets", self->other_link_packets);
}

static PyMethodDef Meter_methods[] = {
    {"feed", (PyCFunction)Meter_feed, METH_VARARGS, "feed(buf, descs): meter the packets descs describe"},
    {"expire", (PyCFunction)Meter_expire, METH_O, "expire(now_ns): finish idle and too old flows"},
    {"flush", (PyCFunction)Meter_flush, METH_NOARGS, "finish every open flow"},
    {"take", (PyCFunction)Meter_take, METH_NOARGS, "take() -> (records, count, packets, bytes)"},
    {"stats", (PyCFunction)Meter_stats, METH_NOARGS, "counters as a dict"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Meter_members[] = {
    {"clock", T_LONGLONG, offsetof(Meter, clock), READONLY, "the newest packet time seen, ns"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject MeterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "opentap._native.Meter",
    .tp_basicsize = sizeof(Meter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Meter(active_ns, idle_ns, until_ns=-1): unidirectional flows from pcap records",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Meter_init,
    .tp_dealloc = (destructor)Meter_dealloc,
    .tp_methods = Meter_methods,
    .tp_members = Meter_members,
};

/* csv(records, proto_names, written) -> bytes: one nfdump CSV line per fm_flow record (ASCII) */
static PyObject *csv(PyObject *self, PyObject *args) {
    Py_buffer recs;
    PyObject *names;
    const char *written;
    if (!PyArg_ParseTuple(args, "y*O!s", &recs, &PyTuple_Type, &names, &written))
        return NULL;
    if (PyTuple_GET_SIZE(names) != 256) {
        PyBuffer_Release(&recs);
        return PyErr_Format(PyExc_ValueError, "proto_names must hold 256 names");
    }
    const char *name[256];
    size_t longest = 0;
    for (int p = 0; p < 256; p++) {
        if (!(name[p] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, p)))) {
            PyBuffer_Release(&recs);
            return NULL;
        }
        size_t n = strlen(name[p]);
        longest = n > longest ? n : longest;
    }
    const fm_flow *flows = recs.buf;
    size_t count = (size_t)recs.len / sizeof(fm_flow), line = fm_csv_bound(longest, strlen(written));
    /* the lines go straight into the bytes object, sized for the longest they could be and cut to what they
       took: no buffer that grows by copies, no copy into the result (both were 40 % of the formatting's time) */
    if (count > (size_t)PY_SSIZE_T_MAX / line) {
        PyBuffer_Release(&recs);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * line));
    if (!out) {
        PyBuffer_Release(&recs);
        return NULL;
    }
    fm_text text = {.buf = PyBytes_AS_STRING(out), .cap = count * line};
    fm_clock clock[2] = {{0}};
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < count && rc >= 0; i++)
        rc = fm_csv_line(&text, &flows[i], name[flows[i].key.proto], written, clock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&recs);
    if (rc < 0) { /* a line longer than fm_csv_bound says: a bug, not the input's fault */
        Py_DECREF(out);
        return PyErr_Format(PyExc_SystemError, "a CSV line outgrew its bound");
    }
    if (_PyBytes_Resize(&out, (Py_ssize_t)text.len) < 0)
        return NULL;
    return out;
}

static PyObject *linktype_known(PyObject *self, PyObject *arg) {
    unsigned long n = PyLong_AsUnsignedLong(arg);
    if (n == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(n <= UINT32_MAX && fm_linktype_known((uint32_t)n));
}

static PyMethodDef functions[] = {
    {"scan_pcap", scan_pcap, METH_VARARGS,
     "scan_pcap(buf, big_endian, nanosecond, linktype, max_caplen) -> (descs, end, need, bad_caplen, captured, wire)"},
    {"scan_pcapng", scan_pcapng, METH_VARARGS,
     "scan_pcapng(buf, big_endian, ifaces, max_block, last_ts) -> (descs, end, need, stop, bad, captured, wire, "
     "last_ts)"},
    {"linktype_known", linktype_known, METH_O, "linktype_known(n) -> whether the meter decodes this link type"},
    {"csv", csv, METH_VARARGS, "csv(records, proto_names, written) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Native pcap and flow metering.", -1,
                                    functions};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&MeterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddIntConstant(m, "FLOW_SIZE", sizeof(fm_flow)) < 0 ||
        PyModule_AddIntConstant(m, "DESC_SIZE", sizeof(fm_desc)) < 0 ||
        PyModule_AddIntConstant(m, "IFACE_SIZE", sizeof(fm_ng_iface)) < 0 ||
        PyModule_AddObjectRef(m, "Meter", (PyObject *)&MeterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
