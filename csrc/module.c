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

static uint32_t u32(const unsigned char *p, int big_endian) {
    if (big_endian)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* walk(buf, big_endian, max_caplen) -> (offsets, end, need, bad_caplen, captured, wire): the one sequential
step of reading pcap data (each record's length gives the next one's offset). offsets: native int64 offsets of
the whole records in buf; end: just past the last of them; need: how many bytes the partial record after it
still lacks (0 when even its header is incomplete); bad_caplen: a caplen above max_caplen found at end (we are
not at a record boundary: the file is corrupt), else 0; captured, wire: the sums of the records' caplen and
orig_len. */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t need = 0, pos = 0, count = 0;
    int big_endian;
    unsigned long max_caplen, bad_caplen = 0;
    unsigned long long captured = 0, wire = 0;
    if (!PyArg_ParseTuple(args, "y*pk", &view, &big_endian, &max_caplen))
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len;
    Py_BEGIN_ALLOW_THREADS /* the loops below touch no Python object: let the API threads run */
    for (Py_ssize_t at = 0; at + 16 <= n;) { /* count first: one allocation of the exact size */
        uint32_t caplen = u32(data + at + 8, big_endian);
        if (caplen > max_caplen || at + 16 + (Py_ssize_t)caplen > n)
            break;
        at += 16 + caplen;
        count++;
    }
    Py_END_ALLOW_THREADS
    PyObject *packed = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (!packed) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offsets = (int64_t *)PyBytes_AS_STRING(packed);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint32_t caplen = u32(data + pos + 8, big_endian);
        offsets[i] = pos;
        captured += caplen;
        wire += u32(data + pos + 12, big_endian);
        pos += 16 + caplen;
    }
    if (pos + 16 <= n) {
        uint32_t caplen = u32(data + pos + 8, big_endian);
        if (caplen > max_caplen)
            bad_caplen = caplen;
        else
            need = pos + 16 + (Py_ssize_t)caplen - n;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("NnnkKK", packed, pos, need, bad_caplen, captured, wire);
}

typedef struct {
    PyObject_HEAD fm_table table;
    int busy; /* feed runs without the GIL: no other call may touch the table meanwhile */
    int64_t until_ns;
    long long clock;
    long long packets, ip_packets, ip_bytes, non_ip_packets, non_ip_bytes, fragments, first_ns;
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

/* feed(buf, offsets, big_endian, nanosecond): meter the records of buf that start at offsets (from walk) */
static PyObject *Meter_feed(Meter *self, PyObject *args) {
    Py_buffer buf, offs;
    int big_endian, nanosecond, rc = 0;
    if (!PyArg_ParseTuple(args, "y*y*pp", &buf, &offs, &big_endian, &nanosecond))
        return NULL;
    if (claim(self) != 0) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&offs);
        return NULL;
    }
    const unsigned char *data = buf.buf;
    const int64_t *offsets = offs.buf;
    Py_ssize_t count = offs.len / (Py_ssize_t)sizeof(int64_t);
    fm_packet p;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && rc == 0; i++) {
        int64_t at = offsets[i];
        if (at < 0 || at + 16 > buf.len)
            continue;
        uint32_t caplen = u32(data + at + 8, big_endian), wire = u32(data + at + 12, big_endian);
        if (at + 16 + (int64_t)caplen > buf.len)
            continue;
        int64_t ts = (int64_t)u32(data + at, big_endian) * 1000000000LL +
                     (int64_t)u32(data + at + 4, big_endian) * (nanosecond ? 1 : 1000);
        if (self->until_ns >= 0 && ts > self->until_ns)
            continue; /* after the end of the capture window */
        fm_parse(data + at + 16, caplen, &p);
        p.ts = ts;
        self->packets++;
        if (self->first_ns == 0 || ts < self->first_ns)
            self->first_ns = ts;
        if (ts > self->clock)
            self->clock = ts; /* also the metered span's end */
        if (!p.is_ip) {
            self->non_ip_packets++;
            self->non_ip_bytes += wire;
            continue;
        }
        self->ip_packets++;
        self->ip_bytes += p.ip_bytes;
        self->fragments += p.fragment;
        rc = fm_table_add(&self->table, &p);
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offs);
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
    return Py_BuildValue("{sLsLsLsLsLsLsLsLsLsn}", "packets", self->packets, "ip_packets", self->ip_packets,
                         "ip_bytes", self->ip_bytes, "non_ip_packets", self->non_ip_packets, "non_ip_bytes",
                         self->non_ip_bytes, "fragments", self->fragments, "first_ns", self->first_ns, "last_ns",
                         self->clock, "clock", self->clock, "open_flows",
                         (Py_ssize_t)self->table.count);
}

static PyMethodDef Meter_methods[] = {
    {"feed", (PyCFunction)Meter_feed, METH_VARARGS, "feed(buf, offsets, big_endian, nanosecond)"},
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

/* csv(records, proto_names, written) -> str: one nfdump CSV line per fm_flow record */
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
    for (int p = 0; p < 256; p++) {
        if (!(name[p] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, p)))) {
            PyBuffer_Release(&recs);
            return NULL;
        }
    }
    const fm_flow *flows = recs.buf;
    size_t count = (size_t)recs.len / sizeof(fm_flow);
    fm_text text = {0};
    fm_clock clock[2] = {{0}};
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < count && rc >= 0; i++)
        rc = fm_csv_line(&text, &flows[i], name[flows[i].key.proto], written, clock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&recs);
    PyObject *out = rc < 0 ? PyErr_NoMemory() : PyUnicode_DecodeASCII(text.buf, text.len, NULL);
    free(text.buf);
    return out;
}

static PyMethodDef functions[] = {
    {"walk", walk, METH_VARARGS,
     "walk(buf, big_endian, max_caplen) -> (offsets, end, need, bad_caplen, captured, wire)"},
    {"csv", csv, METH_VARARGS, "csv(records, proto_names, written) -> str"},
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
        PyModule_AddObjectRef(m, "Meter", (PyObject *)&MeterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
