/* The compiled Avro writer and reader: each runs a program that `avro_program.py` (writing) or
 * `avro_read_program.py` (reading) builds from a parsed schema.
 *
 * A program is a tree of tuples, one per schema node, whose first item is the operation
 * (the OP_* numbers below, mirrored in the two Python modules). Writer(program, unwritable,
 * uuid_type, epoch)(value, out) appends to the bytearray `out` exactly what the Python writer
 * appends, or raises `unwritable` (avro_writer.Unwritable) for any value it is not sure of, after
 * which the codec takes the reference path. It never guesses: an integer beyond 64 bits, a string that is
 * not UTF-8, a dict subclass, a datetime without an offset all raise `unwritable`.
 *
 * Reader(program, malformed)(value, offset) reads the body at value[offset:] into what fastavro's
 * schemaless_reader returns for it (dicts, lists, str, bytes, int, float, bool, None, aware UTC
 * datetimes), or raises `malformed` for a body that is not exactly one record of its schema. It
 * reads only within the bytes object, and refuses some bodies fastavro reads leniently (see
 * avro_read_program.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <limits.h>
#include <stddef.h>
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
    OP_UNION = 16,      /* read programs only: (16, (program, ...)) */
};
/* Read programs use OP_NULL to OP_STRING, OP_TIMESTAMP_MICROS, OP_ARRAY and OP_MAP as above, and
 * (OP_ENUM, (symbol, ...)), (OP_RECORD, ((field name, program), ...)) and OP_UNION; a uuid is read
 * as its text, by OP_STRING. */

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

/* The error being raised becomes one of `error_type`, with the original as its cause. */
static int reraise_as(PyObject *error_type) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *text = value != NULL ? PyObject_Str(value) : NULL;
    if (text == NULL) {
        PyErr_Clear();
    }
    PyObject *error = PyObject_CallOneArg(error_type, text != NULL ? text : Py_None);
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

/* Any error raised while reading a value becomes `unwritable`, with the original as its cause. */
static int as_unwritable(Writer *w) {
    return reraise_as(w->unwritable);
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

/* -- the Reader -------------------------------------------------------------------------------- */

#define MICROS_PER_DAY 86400000000LL
/* Days from 1970-01-01 to 0001-01-01 and to 9999-12-31, the ends of Python's datetime. */
#define FIRST_DAY (-719162LL)
#define LAST_DAY 2932896LL

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *program;
    PyObject *malformed;
} Reader;

typedef struct {
    const unsigned char *at;
    const unsigned char *end;
    PyObject *malformed;
} Input;

static int malformed(Input *in, const char *message) {
    PyErr_SetString(in->malformed, message);
    return -1;
}

static inline Py_ssize_t bytes_left(Input *in) {
    return in->end - in->at;
}

/* A zigzag varint of at most 10 bytes, whose 10th byte holds the 64th bit only. */
static int read_long(Input *in, long long *value) {
    unsigned long long n = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (in->at >= in->end) {
            return malformed(in, "the body ends early");
        }
        unsigned char byte = *in->at++;
        if (shift == 63 && byte > 1) {
            return malformed(in, byte & 0x80 ? "a varint longer than 10 bytes" : "a varint beyond 64 bits");
        }
        n |= (unsigned long long)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *value = (long long)((n >> 1) ^ (0 - (n & 1)));
            return 0;
        }
    }
    return malformed(in, "a varint longer than 10 bytes"); /* not reached: the 10th byte ends it */
}

/* The length of a string or bytes, then its bytes, which must all be in the body. */
static int read_span(Input *in, const char **start, Py_ssize_t *size) {
    long long length;
    if (read_long(in, &length) < 0) {
        return -1;
    }
    if (length < 0) {
        return malformed(in, "a negative length");
    }
    if (length > bytes_left(in)) {
        return malformed(in, "the body ends early");
    }
    *start = (const char *)in->at;
    *size = (Py_ssize_t)length;
    in->at += length;
    return 0;
}

static PyObject *read_string(Input *in) {
    const char *start;
    Py_ssize_t size;
    if (read_span(in, &start, &size) < 0) {
        return NULL;
    }
    PyObject *text = PyUnicode_DecodeUTF8(start, size, NULL);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        reraise_as(in->malformed);
    }
    return text;
}

static PyObject *read_bytes(Input *in) {
    const char *start;
    Py_ssize_t size;
    if (read_span(in, &start, &size) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize(start, size);
}

static PyObject *read_fixed_float(Input *in, int size) {
    if (bytes_left(in) < size) {
        malformed(in, "the body ends early");
        return NULL;
    }
    const char *start = (const char *)in->at;
    in->at += size;
    double number = size == 8 ? PyFloat_Unpack8(start, 1) : PyFloat_Unpack4(start, 1);
    if (number == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(number);
}

static PyObject *read_boolean(Input *in) {
    if (in->at >= in->end) {
        malformed(in, "the body ends early");
        return NULL;
    }
    unsigned char byte = *in->at++;
    if (byte > 1) {
        malformed(in, "a boolean byte other than 0 or 1");
        return NULL;
    }
    return PyBool_FromLong(byte);
}

/* fastavro's datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=n), built from the
 * civil date of the day (H. Hinnant's days_from_civil inverse) without the arithmetic objects. */
static PyObject *read_timestamp_micros(Input *in) {
    long long micros;
    if (read_long(in, &micros) < 0) {
        return NULL;
    }
    long long days = micros / MICROS_PER_DAY, rest = micros % MICROS_PER_DAY;
    if (rest < 0) {
        rest += MICROS_PER_DAY;
        days--;
    }
    if (days < FIRST_DAY || days > LAST_DAY) {
        malformed(in, "a time outside the years 1 to 9999");
        return NULL;
    }
    long long z = days + 719468; /* days since 0000-03-01, positive from year 1 on */
    long long era = z / 146097, day_of_era = z % 146097;
    long long year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    long long day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    long long month_from_march = (5 * day_of_year + 2) / 153;
    int day = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    int month = (int)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    int year = (int)(year_of_era + era * 400 + (month <= 2));
    long long seconds = rest / 1000000;
    return PyDateTimeAPI->DateTime_FromDateAndTime(year, month, day, (int)(seconds / 3600), (int)(seconds / 60 % 60),
                                                   (int)(seconds % 60), (int)(rest % 1000000),
                                                   PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
}

/* An index into the `count` symbols of an enum or members of a union. */
static int read_index(Input *in, Py_ssize_t count, const char *negative, const char *beyond, Py_ssize_t *index) {
    long long value;
    if (read_long(in, &value) < 0) {
        return -1;
    }
    if (value < 0) {
        return malformed(in, negative);
    }
    if (value >= count) {
        return malformed(in, beyond);
    }
    *index = (Py_ssize_t)value;
    return 0;
}

static PyObject *read_value(Input *in, PyObject *op, int depth);

static PyObject *read_record(Input *in, PyObject *fields, int depth) {
    PyObject *record = PyDict_New();
    if (record == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(fields);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *field = PyTuple_GET_ITEM(fields, i);
        PyObject *value = read_value(in, PyTuple_GET_ITEM(field, 1), depth);
        if (value == NULL) {
            Py_DECREF(record);
            return NULL;
        }
        int result = PyDict_SetItem(record, PyTuple_GET_ITEM(field, 0), value);
        Py_DECREF(value);
        if (result < 0) {
            Py_DECREF(record);
            return NULL;
        }
    }
    return record;
}

/* The head of a block of an array or a map: its count of items, and for a negative count the
 * block's size in bytes, where the block must end (`*block_end`, else NULL). Every item takes a
 * byte at least (avro_read_program gives no program an array of items that take none), so a count
 * beyond the bytes left is refused before anything is read. */
static int read_block_head(Input *in, long long *count, const unsigned char **block_end) {
    *block_end = NULL;
    if (read_long(in, count) < 0) {
        return -1;
    }
    if (*count < 0) {
        if (*count == LLONG_MIN) {
            return malformed(in, "a block count of -2**63");
        }
        *count = -*count;
        long long size;
        if (read_long(in, &size) < 0) {
            return -1;
        }
        if (size < 0 || size > bytes_left(in)) {
            return malformed(in, "a block byte size beyond the body");
        }
        *block_end = in->at + size;
    }
    if (*count > bytes_left(in)) {
        return malformed(in, "a block count beyond the body");
    }
    return 0;
}

static int end_block(Input *in, const unsigned char *block_end) {
    if (block_end != NULL && in->at != block_end) {
        return malformed(in, "a block byte size other than the block's");
    }
    return 0;
}

static PyObject *read_array(Input *in, PyObject *items, int depth) {
    PyObject *array = PyList_New(0);
    if (array == NULL) {
        return NULL;
    }
    for (;;) {
        long long count;
        const unsigned char *block_end;
        if (read_block_head(in, &count, &block_end) < 0) {
            break;
        }
        if (count == 0) {
            return array;
        }
        int result = 0;
        for (long long i = 0; result == 0 && i < count; i++) {
            PyObject *item = read_value(in, items, depth);
            if (item == NULL) {
                result = -1;
                break;
            }
            result = PyList_Append(array, item);
            Py_DECREF(item);
        }
        if (result < 0 || end_block(in, block_end) < 0) {
            break;
        }
    }
    Py_DECREF(array);
    return NULL;
}

static int read_entry(Input *in, PyObject *values, PyObject *map, int depth) {
    PyObject *key = read_string(in);
    if (key == NULL) {
        return -1;
    }
    PyObject *value = read_value(in, values, depth);
    int result = value != NULL ? PyDict_SetItem(map, key, value) : -1;
    Py_DECREF(key);
    Py_XDECREF(value);
    return result;
}

static PyObject *read_map(Input *in, PyObject *values, int depth) {
    PyObject *map = PyDict_New();
    if (map == NULL) {
        return NULL;
    }
    for (;;) {
        long long count;
        const unsigned char *block_end;
        if (read_block_head(in, &count, &block_end) < 0) {
            break;
        }
        if (count == 0) {
            return map;
        }
        int result = 0;
        for (long long i = 0; result == 0 && i < count; i++) {
            result = read_entry(in, values, map, depth);
        }
        if (result < 0 || end_block(in, block_end) < 0) {
            break;
        }
    }
    Py_DECREF(map);
    return NULL;
}

static PyObject *read_value(Input *in, PyObject *op, int depth) {
    if (depth >= MAX_DEPTH) {
        malformed(in, "nested too deep");
        return NULL;
    }
    depth++;
    Py_ssize_t index;
    long long number;
    switch (PyLong_AsLong(PyTuple_GET_ITEM(op, 0))) {
    case OP_NULL:
        Py_RETURN_NONE;
    case OP_BOOLEAN:
        return read_boolean(in);
    case OP_LONG:
        return read_long(in, &number) < 0 ? NULL : PyLong_FromLongLong(number);
    case OP_FLOAT:
        return read_fixed_float(in, 4);
    case OP_DOUBLE:
        return read_fixed_float(in, 8);
    case OP_BYTES:
        return read_bytes(in);
    case OP_STRING:
        return read_string(in);
    case OP_TIMESTAMP_MICROS:
        return read_timestamp_micros(in);
    case OP_ENUM: {
        PyObject *symbols = PyTuple_GET_ITEM(op, 1);
        if (read_index(in, PyTuple_GET_SIZE(symbols), "a negative enum index", "an enum index out of range",
                       &index) < 0) {
            return NULL;
        }
        return Py_NewRef(PyTuple_GET_ITEM(symbols, index));
    }
    case OP_RECORD:
        return read_record(in, PyTuple_GET_ITEM(op, 1), depth);
    case OP_ARRAY:
        return read_array(in, PyTuple_GET_ITEM(op, 1), depth);
    case OP_MAP:
        return read_map(in, PyTuple_GET_ITEM(op, 1), depth);
    case OP_UNION: {
        PyObject *members = PyTuple_GET_ITEM(op, 1);
        if (read_index(in, PyTuple_GET_SIZE(members), "a negative union index", "a union index out of range",
                       &index) < 0) {
            return NULL;
        }
        return read_value(in, PyTuple_GET_ITEM(members, index), depth);
    }
    default:
        PyErr_SetString(PyExc_SystemError, "an unknown read operation");
        return NULL;
    }
}

static int valid_read_program(PyObject *op, int depth);

static int valid_tuple_of(PyObject *items, int (*valid_item)(PyObject *, int), int depth) {
    if (!PyTuple_Check(items)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        if (!valid_item(PyTuple_GET_ITEM(items, i), depth)) {
            return 0;
        }
    }
    return 1;
}

/* Exact str only: a key of a record's dict must hash and compare without running Python code. */
static int valid_symbol(PyObject *symbol, int depth) {
    return PyUnicode_CheckExact(symbol);
}

static int valid_field(PyObject *field, int depth) {
    return PyTuple_Check(field) && PyTuple_GET_SIZE(field) == 2 && PyUnicode_CheckExact(PyTuple_GET_ITEM(field, 0)) &&
           valid_read_program(PyTuple_GET_ITEM(field, 1), depth);
}

/* The reader runs programs without checking their shape: check it once, here. */
static int valid_read_program(PyObject *op, int depth) {
    if (depth > MAX_DEPTH || !PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 1 ||
        !PyLong_Check(PyTuple_GET_ITEM(op, 0))) {
        return 0;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(op);
    PyObject *operand = size == 2 ? PyTuple_GET_ITEM(op, 1) : NULL;
    switch (PyLong_AsLong(PyTuple_GET_ITEM(op, 0))) {
    case OP_NULL:
    case OP_BOOLEAN:
    case OP_LONG:
    case OP_FLOAT:
    case OP_DOUBLE:
    case OP_BYTES:
    case OP_STRING:
    case OP_TIMESTAMP_MICROS:
        return size == 1;
    case OP_ENUM:
        return operand != NULL && valid_tuple_of(operand, valid_symbol, depth + 1);
    case OP_RECORD:
        return operand != NULL && valid_tuple_of(operand, valid_field, depth + 1);
    case OP_ARRAY:
    case OP_MAP:
        return operand != NULL && valid_read_program(operand, depth + 1);
    case OP_UNION:
        return operand != NULL && valid_tuple_of(operand, valid_read_program, depth + 1);
    default:
        PyErr_Clear(); /* an operation beyond a long */
        return 0;
    }
}

static PyObject *Reader_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Reader *self = (Reader *)callable;
    if (PyVectorcall_NARGS(nargsf) != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) ||
        !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "Reader(value: bytes, offset: int)");
        return NULL;
    }
    if (self->program == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Reader is not initialised");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (offset < 0 || offset > size) {
        PyErr_SetString(PyExc_IndexError, "the offset is outside the value");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Input in = {data + offset, data + size, self->malformed};
    PyObject *datum = read_value(&in, self->program, 0);
    if (datum != NULL && in.at != in.end) {
        Py_DECREF(datum);
        PyErr_Format(self->malformed, "%zd bytes left after the record", bytes_left(&in));
        return NULL;
    }
    return datum;
}

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    Reader *self = (Reader *)PyType_GenericNew(type, args, kwargs);
    if (self != NULL) {
        self->vectorcall = Reader_vectorcall;
    }
    return (PyObject *)self;
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"program", "malformed", NULL};
    PyObject *program, *malformed_type;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", keywords, &program, &malformed_type)) {
        return -1;
    }
    if (!valid_read_program(program, 0)) {
        PyErr_SetString(PyExc_ValueError, "not a reader program");
        return -1;
    }
    if (!PyExceptionClass_Check(malformed_type)) {
        PyErr_SetString(PyExc_TypeError, "expected an exception class");
        return -1;
    }
    Py_INCREF(program);
    Py_INCREF(malformed_type);
    Py_XSETREF(self->program, program);
    Py_XSETREF(self->malformed, malformed_type);
    return 0;
}

static int Reader_traverse(Reader *self, visitproc visit, void *arg) {
    Py_VISIT(self->program);
    Py_VISIT(self->malformed);
    return 0;
}

static int Reader_clear(Reader *self) {
    Py_CLEAR(self->program);
    Py_CLEAR(self->malformed);
    return 0;
}

static void Reader_dealloc(Reader *self) {
    PyObject_GC_UnTrack(self);
    Reader_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "workers.contracts._avro_speedups.Reader",
    .tp_doc = PyDoc_STR("Reader(program, malformed)(value: bytes, offset: int): the record whose Avro body is "
                        "value[offset:], as fastavro reads it, or raises `malformed`."),
    .tp_basicsize = sizeof(Reader),
    .tp_vectorcall_offset = offsetof(Reader, vectorcall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Reader_new,
    .tp_init = (initproc)Reader_init,
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)Reader_traverse,
    .tp_clear = (inquiry)Reader_clear,
    .tp_dealloc = (destructor)Reader_dealloc,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "workers.contracts._avro_speedups",
    .m_doc = "The compiled Avro writer of avro_program and reader of avro_read_program.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__avro_speedups(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    str_avro_name = PyUnicode_InternFromString("AVRO_NAME");
    if (str_avro_name == NULL || PyType_Ready(&WriterType) < 0 || PyType_Ready(&ReaderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Writer", (PyObject *)&WriterType) < 0 ||
        PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
