/* The busy flag that makes FrameParser and Utf8Validator one-thread-at-a-time.
 *
 * Their methods change state spread over several fields (and objects those
 * fields own), so two calls at once would corrupt it; on a free-threaded
 * build (3.13t, 3.14t) it could free an object the other call still reads.
 * Instead of a lock, which would also make a re-entrant call (a callback
 * feeding the parser that is calling it) wait for itself, each method
 * enters by setting the flag and leaves by clearing it: a second call while
 * it is set raises RuntimeError (Errors.CONCURRENT_USE) before touching
 * anything.
 *
 * With the GIL, entering is a plain test and store: no other thread runs
 * between the two, since no Python code does. Without it (Py_GIL_DISABLED),
 * a compare-and-swap, so that of two threads entering at once exactly one
 * gets in. CPython's atomics are in Python.h on every version that has
 * free-threaded builds (3.13 on).
 */
#ifndef WSCODEC_BUSY_H
#define WSCODEC_BUSY_H

#include <Python.h>

/* 1 if the caller entered (the flag was clear and is now set), 0 if busy. */
static inline int ws_enter(int *busy)
{
#ifdef Py_GIL_DISABLED
    int expected = 0;
    return _Py_atomic_compare_exchange_int(busy, &expected, 1);
#else
    if (*busy)
        return 0;
    *busy = 1;
    return 1;
#endif
}

/* Clear the flag set by a successful ws_enter(). */
static inline void ws_leave(int *busy)
{
#ifdef Py_GIL_DISABLED
    _Py_atomic_store_int(busy, 0);
#else
    *busy = 0;
#endif
}

#endif
