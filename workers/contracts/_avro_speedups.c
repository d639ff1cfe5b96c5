/* The compiled Avro writer: runs a program that `avro_program.py` builds from a parsed schema.
 *
 * A program is a tree of tuples, one per schema node, whose first item is the operation
 * (the OP_* numbers below, mirrored in avro_program.py). Writer(program, unwritable, uuid_type,
 * epoch)(value, out) appends to the bytearray `out` exactly what the Python writer appends, or
 * raises `unwritable` (avro_writer.Unwritable) for any value it is not sure of, after which the
 * codec takes the reference path. It never guesses: an integer beyond 64 bits, a string that is
 * not UTF-8, a dict subclass, a datetime without an offset all raise `unwritable`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <string.h>

enum {
    OP_NULL = 0,
    OP_BOOLEAN = 1,
    OP_LONG = 2,
    OP_FLOAT = 3,
    OP_DOUBLE = 4,
    OP_BYTES = 5,
    OP_STRING = 6,
    OP_UUID = 7,
    OP_TIMESTAMP_MICROS = 8,
    OP_ENUM = 9,        /* (9, {symbol: index}) */
    OP_RECORD = 10,     /* (10, ((attribute, program), ...)) */
    OP_EVENT = 11,      /* (11, memo's dict, schema_key, record_program, limit): an embedded event */
    OP_ARRAY = 12,      /* (12, item_program) */
    OP_MAP = 13,        /* (13, value_program) */
    OP_OPTIONAL = 14,   /* (14, null_index or -1, other_index, other_program) */
    OP_RECORDS = 15,    /* (15, null_index or -1, {AVRO_NAME: (index, program)}) */
};

#define MAX_DEPTH 64
#define INLINE_BYTES 2048

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
    char inline_data[INLINE_BYTES];
} Buffer;

typedef struct {
    PyObject_HEAD
    PyObject *program;
    PyObject *unwritable;
    PyObject *uuid_type;
    PyObject *epoch;
} Writer;

static PyObject *str_avro_name;

static int unwritable(Writer *w, const char *message) {
    PyErr_SetString(w->unwritable, message);
    return -1;
}

/* Any error raised while reading a value becomes `unwritable`, with the original as its cause. */
static int as_unwritable(Writer *w) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *text = value != NULL ? PyObject_Str(value) : NULL;
    if (text == NULL) {
        PyErr_Clear();
    }
    PyObject *error = PyObject_CallOneArg(w->unwritable, text != NULL ? text : Py_None);
    Py_XDECREF(text);
    if (error != NULL) {
        if (value != NULL) {
            PyException_SetCause(error, value); /* steals the reference */
            value = NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    Py_XDECREF(value);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return -1;
}

static int reserve(Buffer *buffer, Py_ssize_t extra) {
    Py_ssize_t needed = buffer->size + extra;
    if (needed <= buffer->capacity) {
        return 0;
    }
    Py_ssize_t capacity = buffer->capacity * 2;
    while (capacity < needed) {
        capacity *= 2;
    }
    char *data;
    if (buffer->data == buffer->inline_data) {
        data = PyMem_Malloc(capacity);
        if (data != NULL) {
            memcpy(data, buffer->data, buffer->size);
        }
    } else {
        data = PyMem_Realloc(buffer->data, capacity);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

static inline int put_byte(Buffer *buffer, char byte) {
    if (buffer->size >= buffer->capacity && reserve(buffer, 1) < 0) {
        return -1;
    }
    buffer->data[buffer->size++] = byte;
    return 0;
}

static inline int put_bytes(Buffer *buffer, const char *bytes, Py_ssize_t size) {
    if (reserve(buffer, size) < 0) {
        return -1;
    }
    memcpy(buffer->data + buffer->size, bytes, size);
    buffer->size += size;
    return 0;
}

static int put_long(Buffer *buffer, long long value) {
    unsigned long long n = ((unsigned long long)value << 1) ^ (unsigned long long)(value >> 63);
    if (reserve(buffer, 10) < 0) {
        return -1;
    }
    while (n > 0x7F) {
        buffer->data[buffer->size++] = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    buffer->data[buffer->size++] = (char)n;
    return 0;
}

static int put_string(Writer *w, Buffer *buffer, PyObject *value) {
    if (!PyUnicode_Check(value)) {
        return unwritable(w, "not a string");
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(value, &size);
    if (text == NULL) {
        return as_unwritable(w);
    }
    if (put_long(buffer, size) < 0) {
        return -1;
    }
    return put_bytes(buffer, text, size);
}

static int put_integer(Writer *w, Buffer *buffer, PyObject *value) {
    if (!PyLong_Check(value) || PyBool_Check(value)) {
        return unwritable(w, "not an integer");
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        return unwritable(w, "an integer beyond 64 bits");
    }
    if (number == -1 && PyErr_Occurred()) {
        return as_unwritable(w);
    }
    return put_long(buffer, number);
}

static int number_of(Writer *w, PyObject *value, double *number) {
    if (PyFloat_Check(value)) {
        *number = PyFloat_AS_DOUBLE(value);
        return 0;
    }
    if (PyLong_Check(value) && !PyBool_Check(value)) {
        *number = PyLong_AsDouble(value);
        if (*number == -1.0 && PyErr_Occurred()) {
            return as_unwritable(w);
        }
        return 0;
    }
    return unwritable(w, "not a number");
}

static int put_double(Writer *w, Buffer *buffer, PyObject *value) {
    double number;
    if (number_of(w, value, &number) < 0 || reserve(buffer, 8) < 0) {
        return -1;
    }
    if (PyFloat_Pack8(number, buffer->data + buffer->size, 1) < 0) {
        return as_unwritable(w);
    }
    buffer->size += 8;
    return 0;
}

static int put_float(Writer *w, Buffer *buffer, PyObject *value) {
    double number;
    if (number_of(w, value, &number) < 0 || reserve(buffer, 4) < 0) {
        return -1;
    }
    if (PyFloat_Pack4(number, buffer->data + buffer->size, 1) < 0) {
        return as_unwritable(w); /* too large for a float: struct.pack raises too */
    }
    buffer->size += 4;
    return 0;
}

static int put_timestamp_micros(Writer *w, Buffer *buffer, PyObject *value) {
    if (!PyDateTime_Check(value) || PyDateTime_DATE_GET_TZINFO(value) == Py_None) {
        return unwritable(w, "not an aware datetime");
    }
    PyObject *delta = PyNumber_Subtract(value, w->epoch);
    if (delta == NULL) {
        return as_unwritable(w);
    }
    if (!PyDelta_Check(delta)) {
        Py_DECREF(delta);
        return unwritable(w, "a datetime whose difference is not a timedelta");
    }
    long long days = PyDateTime_DELTA_GET_DAYS(delta);
    long long seconds = PyDateTime_DELTA_GET_SECONDS(delta);
    long long micros = PyDateTime_DELTA_GET_MICROSECONDS(delta);
    Py_DECREF(delta);
    return put_long(buffer, (days * 86400 + seconds) * 1000000 + micros);
}

static int write_value(Writer *w, PyObject *op, PyObject *value, Buffer *buffer, int depth);

static int put_uuid(Writer *w, Buffer *buffer, PyObject *value) {
    if (PyUnicode_Check(value)) {
        return put_string(w, buffer, value);
    }
    int is_uuid = PyObject_IsInstance(value, w->uuid_type);
    if (is_uuid < 0) {
        return as_unwritable(w);
    }
    if (!is_uuid) {
        return unwritable(w, "not a UUID");
    }
    PyObject *text = PyObject_Str(value);
    if (text == NULL) {
        return as_unwritable(w);
    }
    int result = put_string(w, buffer, text);
    Py_DECREF(text);
    return result;
}

static int put_record(Writer *w, PyObject *fields, PyObject *value, Buffer *buffer, int depth) {
    Py_ssize_t count = PyTuple_GET_SIZE(fields);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *field = PyTuple_GET_ITEM(fields, i);
        PyObject *item = PyObject_GetAttr(value, PyTuple_GET_ITEM(field, 0));
        if (item == NULL) {
            return as_unwritable(w);
        }
        int result = write_value(w, PyTuple_GET_ITEM(field, 1), item, buffer, depth);
        Py_DECREF(item);
        if (result < 0) {
            return -1;
        }
    }
    return 0;
}

/* BodyMemo's dict: (id(value), schema key) -> (value, body), cleared when it holds `limit`. */
static int put_event(Writer *w, PyObject *op, PyObject *value, Buffer *buffer, int depth) {
    PyObject *bodies = PyTuple_GET_ITEM(op, 1);
    PyObject *identity = PyLong_FromVoidPtr(value);
    if (identity == NULL) {
        return -1;
    }
    PyObject *key = PyTuple_Pack(2, identity, PyTuple_GET_ITEM(op, 2));
    Py_DECREF(identity);
    if (key == NULL) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(bodies, key);
    if (found == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    if (found != NULL && PyTuple_Check(found) && PyTuple_GET_SIZE(found) == 2 &&
        PyTuple_GET_ITEM(found, 0) == value && PyBytes_Check(PyTuple_GET_ITEM(found, 1))) {
        PyObject *body = PyTuple_GET_ITEM(found, 1);
        Py_DECREF(key);
        return put_bytes(buffer, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
    }
    Py_ssize_t start = buffer->size;
    if (write_value(w, PyTuple_GET_ITEM(op, 3), value, buffer, depth) < 0) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *body = PyBytes_FromStringAndSize(buffer->data + start, buffer->size - start);
    PyObject *entry = body != NULL ? PyTuple_Pack(2, value, body) : NULL;
    Py_XDECREF(body);
    if (entry == NULL) {
        Py_DECREF(key);
        return -1;
    }
    if (PyDict_GET_SIZE(bodies) >= PyLong_AsSsize_t(PyTuple_GET_ITEM(op, 4))) {
        PyDict_Clear(bodies);
    }
    int result = PyDict_SetItem(bodies, key, entry);
    Py_DECREF(key);
    Py_DECREF(entry);
    return result;
}

static int put_array(Writer *w, PyObject *items, PyObject *value, Buffer *buffer, int depth) {
    if (!PyList_Check(value) && !PyTuple_Check(value)) {
        return unwritable(w, "not an array");
    }
    /* A list could change while its items are written: work on a snapshot. */
    PyObject *sequence = PySequence_Tuple(value);
    if (sequence == NULL) {
        return as_unwritable(w);
    }
    Py_ssize_t count = PyTuple_GET_SIZE(sequence);
    int result = 0;
    if (count > 0) {
        result = put_long(buffer, count);
        for (Py_ssize_t i = 0; result == 0 && i < count; i++) {
            result = write_value(w, items, PyTuple_GET_ITEM(sequence, i), buffer, depth);
        }
    }
    Py_DECREF(sequence);
    return result < 0 ? -1 : put_byte(buffer, 0);
}

static int put_map(Writer *w, PyObject *values, PyObject *value, Buffer *buffer, int depth) {
    if (!PyDict_CheckExact(value)) {
        return unwritable(w, "not a plain dict");
    }
    Py_ssize_t count = PyDict_GET_SIZE(value);
    if (count > 0) {
        if (put_long(buffer, count) < 0) {
            return -1;
        }
        Py_ssize_t position = 0, seen = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            Py_INCREF(key);
            Py_INCREF(item);
            int result = put_string(w, buffer, key);
            if (result == 0) {
                result = write_value(w, values, item, buffer, depth);
            }
            Py_DECREF(key);
            Py_DECREF(item);
            if (result < 0) {
                return -1;
            }
            seen++;
        }
        if (seen != count || PyDict_GET_SIZE(value) != count) {
            return unwritable(w, "a dict that changed while it was written");
        }
    }
    return put_byte(buffer, 0);
}

static int put_index(Buffer *buffer, PyObject *index) {
    return put_long(buffer, PyLong_AsLongLong(index));
}

static int put_optional(Writer *w, PyObject *op, PyObject *value, Buffer *buffer, int depth) {
    long null_index = PyLong_AsLong(PyTuple_GET_ITEM(op, 1));
    if (value == Py_None) {
        if (null_index < 0) {
            return unwritable(w, "null in a union without null");
        }
        return put_long(buffer, null_index);
    }
    if (put_index(buffer, PyTuple_GET_ITEM(op, 2)) < 0) {
        return -1;
    }
    return write_value(w, PyTuple_GET_ITEM(op, 3), value, buffer, depth);
}

static int put_records(Writer *w, PyObject *op, PyObject *value, Buffer *buffer, int depth) {
    long null_index = PyLong_AsLong(PyTuple_GET_ITEM(op, 1));
    if (value == Py_None && null_index >= 0) {
        return put_long(buffer, null_index);
    }
    PyObject *name = PyObject_GetAttr((PyObject *)Py_TYPE(value), str_avro_name);
    if (name == NULL) {
        return as_unwritable(w);
    }
    PyObject *branch = PyUnicode_Check(name) ? PyDict_GetItemWithError(PyTuple_GET_ITEM(op, 2), name) : NULL;
    Py_DECREF(name);
    if (branch == NULL) {
        return PyErr_Occurred() ? as_unwritable(w) : unwritable(w, "no branch for this type");
    }
    if (put_index(buffer, PyTuple_GET_ITEM(branch, 0)) < 0) {
        return -1;
    }
    return write_value(w, PyTuple_GET_ITEM(branch, 1), value, buffer, depth);
}

static int put_enum(Writer *w, PyObject *symbols, PyObject *value, Buffer *buffer) {
    if (!PyUnicode_Check(value)) {
        return unwritable(w, "not a symbol");
    }
    PyObject *index = PyDict_GetItemWithError(symbols, value);
    if (index == NULL) {
        return PyErr_Occurred() ? as_unwritable(w) : unwritable(w, "not a symbol of the enum");
    }
    return put_index(buffer, index);
}

static int write_value(Writer *w, PyObject *op, PyObject *value, Buffer *buffer, int depth) {
    if (depth >= MAX_DEPTH) {
        return unwritable(w, "nested too deep");
    }
    depth++;
    switch (PyLong_AsLong(PyTuple_GET_ITEM(op, 0))) {
    case OP_NULL:
        return value == Py_None ? 0 : unwritable(w, "not null");
    case OP_BOOLEAN:
        if (!PyBool_Check(value)) {
            return unwritable(w, "not a boolean");
        }
        return put_byte(buffer, value == Py_True ? 1 : 0);
    case OP_LONG:
        return put_integer(w, buffer, value);
    case OP_FLOAT:
        return put_float(w, buffer, value);
    case OP_DOUBLE:
        return put_double(w, buffer, value);
    case OP_BYTES:
        if (PyBytes_Check(value)) {
            if (put_long(buffer, PyBytes_GET_SIZE(value)) < 0) {
                return -1;
            }
            return put_bytes(buffer, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
        }
        if (PyByteArray_Check(value)) {
            if (put_long(buffer, PyByteArray_GET_SIZE(value)) < 0) {
                return -1;
            }
            return put_bytes(buffer, PyByteArray_AS_STRING(value), PyByteArray_GET_SIZE(value));
        }
        return unwritable(w, "not bytes");
    case OP_STRING:
        return put_string(w, buffer, value);
    case OP_UUID:
        return put_uuid(w, buffer, value);
    case OP_TIMESTAMP_MICROS:
        return put_timestamp_micros(w, buffer, value);
    case OP_ENUM:
        return put_enum(w, PyTuple_GET_ITEM(op, 1), value, buffer);
    case OP_RECORD:
        return put_record(w, PyTuple_GET_ITEM(op, 1), value, buffer, depth);
    case OP_EVENT:
        return put_event(w, op, value, buffer, depth);
    case OP_ARRAY:
        return put_array(w, PyTuple_GET_ITEM(op, 1), value, buffer, depth);
    case OP_MAP:
        return put_map(w, PyTuple_GET_ITEM(op, 1), value, buffer, depth);
    case OP_OPTIONAL:
        return put_optional(w, op, value, buffer, depth);
    case OP_RECORDS:
        return put_records(w, op, value, buffer, depth);
    default:
        return unwritable(w, "an unknown operation");
    }
}

/* -- the Writer type --------------------------------------------------------------------------- */

static int valid_program(PyObject *op, int depth);

static int valid_children(PyObject *op, long code, int depth) {
    Py_ssize_t size = PyTuple_GET_SIZE(op);
    switch (code) {
    case OP_ENUM:
        return size == 2 && PyDict_Check(PyTuple_GET_ITEM(op, 1));
    case OP_RECORD: {
        if (size != 2 || !PyTuple_Check(PyTuple_GET_ITEM(op, 1))) {
            return 0;
        }
        PyObject *fields = PyTuple_GET_ITEM(op, 1);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyObject *field = PyTuple_GET_ITEM(fields, i);
            if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(field, 0)) ||
                !valid_program(PyTuple_GET_ITEM(field, 1), depth)) {
                return 0;
            }
        }
        return 1;
    }
    case OP_EVENT:
        return size == 5 && PyDict_Check(PyTuple_GET_ITEM(op, 1)) && PyLong_Check(PyTuple_GET_ITEM(op, 2)) &&
               valid_program(PyTuple_GET_ITEM(op, 3), depth) && PyLong_Check(PyTuple_GET_ITEM(op, 4));
    case OP_ARRAY:
    case OP_MAP:
        return size == 2 && valid_program(PyTuple_GET_ITEM(op, 1), depth);
    case OP_OPTIONAL:
        return size == 4 && PyLong_Check(PyTuple_GET_ITEM(op, 1)) && PyLong_Check(PyTuple_GET_ITEM(op, 2)) &&
               valid_program(PyTuple_GET_ITEM(op, 3), depth);
    case OP_RECORDS: {
        if (size != 3 || !PyLong_Check(PyTuple_GET_ITEM(op, 1)) || !PyDict_Check(PyTuple_GET_ITEM(op, 2))) {
            return 0;
        }
        Py_ssize_t position = 0;
        PyObject *name, *branch;
        while (PyDict_Next(PyTuple_GET_ITEM(op, 2), &position, &name, &branch)) {
            if (!PyTuple_Check(branch) || PyTuple_GET_SIZE(branch) != 2 ||
                !PyLong_Check(PyTuple_GET_ITEM(branch, 0)) || !valid_program(PyTuple_GET_ITEM(branch, 1), depth)) {
                return 0;
            }
        }
        return 1;
    }
    default:
        return size == 1;
    }
}

/* The interpreter reads programs without checking their shape: check it once, here. */
static int valid_program(PyObject *op, int depth) {
    if (depth > MAX_DEPTH || !PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 1 ||
        !PyLong_Check(PyTuple_GET_ITEM(op, 0))) {
        return 0;
    }
    long code = PyLong_AsLong(PyTuple_GET_ITEM(op, 0));
    if (code < OP_NULL || code > OP_RECORDS) {
        return 0;
    }
    return valid_children(op, code, depth + 1);
}

static int Writer_init(Writer *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"program", "unwritable", "uuid_type", "epoch", NULL};
    PyObject *program, *unwritable_type, *uuid_type, *epoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO", keywords, &program, &unwritable_type, &uuid_type,
                                     &epoch)) {
        return -1;
    }
    if (!valid_program(program, 0)) {
        PyErr_SetString(PyExc_ValueError, "not a writer program");
        return -1;
    }
    if (!PyExceptionClass_Check(unwritable_type) || !PyType_Check(uuid_type) || !PyDateTime_Check(epoch)) {
        PyErr_SetString(PyExc_TypeError, "expected an exception class, the UUID type and a datetime");
        return -1;
    }
    Py_INCREF(program);
    Py_INCREF(unwritable_type);
    Py_INCREF(uuid_type);
    Py_INCREF(epoch);
    Py_XSETREF(self->program, program);
    Py_XSETREF(self->unwritable, unwritable_type);
    Py_XSETREF(self->uuid_type, uuid_type);
    Py_XSETREF(self->epoch, epoch);
    return 0;
}

static int write_program(Writer *self, PyObject *value, Buffer *buffer) {
    if (self->program == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Writer is not initialised");
        return -1;
    }
    return write_value(self, self->program, value, buffer, 0);
}

static void init_buffer(Buffer *buffer) {
    buffer->data = buffer->inline_data;
    buffer->size = 0;
    buffer->capacity = INLINE_BYTES;
}

static void free_buffer(Buffer *buffer) {
    if (buffer->data != buffer->inline_data) {
        PyMem_Free(buffer->data);
    }
}

static PyObject *Writer_call(Writer *self, PyObject *args, PyObject *kwargs) {
    PyObject *value, *out;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Writer takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OY", &value, &out)) {
        return NULL;
    }
    Buffer buffer;
    init_buffer(&buffer);
    int result = write_program(self, value, &buffer);
    if (result == 0) {
        Py_ssize_t start = PyByteArray_GET_SIZE(out);
        result = PyByteArray_Resize(out, start + buffer.size);
        if (result == 0) {
            memcpy(PyByteArray_AS_STRING(out) + start, buffer.data, buffer.size);
        }
    }
    free_buffer(&buffer);
    if (result < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* encode(prefix, value) -> prefix + the body of value, as bytes: the codec's one call per output. */
static PyObject *Writer_encode(Writer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "encode(prefix: bytes, value)");
        return NULL;
    }
    Buffer buffer;
    init_buffer(&buffer);
    PyObject *encoded = NULL;
    if (put_bytes(&buffer, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0])) == 0 &&
        write_program(self, args[1], &buffer) == 0) {
        encoded = PyBytes_FromStringAndSize(buffer.data, buffer.size);
    }
    free_buffer(&buffer);
    return encoded;
}

static PyMethodDef Writer_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Writer_encode, METH_FASTCALL,
     PyDoc_STR("encode(prefix: bytes, value) -> bytes: the prefix, then the Avro body of value.")},
    {NULL, NULL, 0, NULL},
};

static int Writer_traverse(Writer *self, visitproc visit, void *arg) {
    Py_VISIT(self->program);
    Py_VISIT(self->unwritable);
    Py_VISIT(self->uuid_type);
    Py_VISIT(self->epoch);
    return 0;
}

static int Writer_clear(Writer *self) {
    Py_CLEAR(self->program);
    Py_CLEAR(self->unwritable);
    Py_CLEAR(self->uuid_type);
    Py_CLEAR(self->epoch);
    return 0;
}

static void Writer_dealloc(Writer *self) {
    PyObject_GC_UnTrack(self);
    Writer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "workers.contracts._avro_speedups.Writer",
    .tp_doc = PyDoc_STR("Writer(program, unwritable, uuid_type, epoch)(value, out: bytearray): appends the "
                        "Avro body of `value` to `out`, or raises `unwritable`."),
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Writer_init,
    .tp_call = (ternaryfunc)Writer_call,
    .tp_methods = Writer_methods,
    .tp_traverse = (traverseproc)Writer_traverse,
    .tp_clear = (inquiry)Writer_clear,
    .tp_dealloc = (destructor)Writer_dealloc,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "workers.contracts._avro_speedups",
    .m_doc = "The compiled Avro writer of avro_program.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__avro_speedups(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    str_avro_name = PyUnicode_InternFromString("AVRO_NAME");
    if (str_avro_name == NULL || PyType_Ready(&WriterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&WriterType);
    if (PyModule_AddObject(m, "Writer", (PyObject *)&WriterType) < 0) {
        Py_DECREF(&WriterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
