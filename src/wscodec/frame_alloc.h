/* Build a Frame (a tuple subclass, wscodec.protocol.Frame) without the
 * temporary tuple that tuple.__new__(Frame, (...)) needs, the way CPython's
 * own tuple_subtype_new fills one: allocate with the type's tp_alloc and set
 * the six items.
 *
 * The frame is then untracked by the cyclic GC: it holds only bytes, bools
 * and an Opcode member, none of which can refer back to it, so it can never
 * be part of a cycle. Parsing thousands of small frames otherwise triggers a
 * young-generation collection every few hundred frames that walks them all
 * (CPython untracks such tuples itself, but only once a collection has
 * looked at them).
 */
#ifndef WSCODEC_FRAME_ALLOC_H
#define WSCODEC_FRAME_ALLOC_H

#include <Python.h>

static PyObject *ws_make_frame(PyObject *type, PyObject *opcode, PyObject *payload, int fin,
                               int rsv1, int rsv2, int rsv3)
{
    PyTypeObject *frame_type = (PyTypeObject *)type;
    PyObject *frame = frame_type->tp_alloc(frame_type, 6);
    PyObject *flags[4];
    int i;
    if (frame == NULL)
        return NULL;
    flags[0] = fin ? Py_True : Py_False;
    flags[1] = rsv1 ? Py_True : Py_False;
    flags[2] = rsv2 ? Py_True : Py_False;
    flags[3] = rsv3 ? Py_True : Py_False;
    Py_INCREF(opcode);
    PyTuple_SET_ITEM(frame, 0, opcode);
    Py_INCREF(payload);
    PyTuple_SET_ITEM(frame, 1, payload);
    for (i = 0; i < 4; i++) {
        Py_INCREF(flags[i]);
        PyTuple_SET_ITEM(frame, 2 + i, flags[i]);
    }
    if (PyObject_GC_IsTracked(frame))
        PyObject_GC_UnTrack(frame);
    return frame;
}

#endif
