/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The session helper's memory guard (runs in each session helper, from
 * just before it reads user code). RLIMIT_AS (sandbox_linux.c) is the
 * limit; this makes reaching it end the session even where user code
 * would catch the MemoryError: any allocation the interpreter cannot
 * have ends the helper with PYEXEC_EXIT_MEMORY, which the supervisor
 * tells from a crash.
 */
#include "helper_python_int.h"   /* Python.h first, as CPython asks */

#include <malloc.h>
#include <unistd.h>
#ifdef PYEXEC_SANITIZERS
/* sanitizer/allocator_interface.h, which not every toolchain ships */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "helper_python.h"

static PyMemAllocatorEx orig_alloc[3];
static PyObjectArenaAllocator orig_arena;

static void out_of_memory(void)
{
    _exit(PYEXEC_EXIT_MEMORY);
}

static void *guard_malloc(void *ctx, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->malloc(a->ctx, size);

    if (!p) {
        out_of_memory();
    }
    return p;
}

static void *guard_calloc(void *ctx, size_t nelem, size_t elsize)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->calloc(a->ctx, nelem, elsize);

    if (!p && nelem && elsize) {
        out_of_memory();
    }
    return p;
}

static void *guard_realloc(void *ctx, void *ptr, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->realloc(a->ctx, ptr, size);

    if (!p && size) {
        out_of_memory();
    }
    return p;
}

static void guard_free(void *ctx, void *ptr)
{
    PyMemAllocatorEx *a = ctx;

    a->free(a->ctx, ptr);
}

/* Python's arenas are mapped directly, outside malloc's books: counted
 * here for the memory a session reports (GET of a session). */
static size_t arena_bytes;

static void *guard_arena_alloc(void *ctx, size_t size)
{
    void *p = orig_arena.alloc(orig_arena.ctx, size);

    (void)ctx;
    if (!p) {
        out_of_memory();
    }
    arena_bytes += size;
    return p;
}

static void guard_arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    orig_arena.free(orig_arena.ctx, ptr, size);
    arena_bytes -= size;
}

void pyexec_py_arm_memory_guard(void)
{
    static const PyMemAllocatorDomain domains[3] = {
        PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ
    };
    PyObjectArenaAllocator arena;

    for (int i = 0; i < 3; i++) {
        PyMemAllocatorEx hook;

        PyMem_GetAllocator(domains[i], &orig_alloc[i]);
        hook.ctx = &orig_alloc[i];
        hook.malloc = guard_malloc;
        hook.calloc = guard_calloc;
        hook.realloc = guard_realloc;
        hook.free = guard_free;
        PyMem_SetAllocator(domains[i], &hook);
    }
    PyObject_GetArenaAllocator(&orig_arena);
    arena.ctx = NULL;
    arena.alloc = guard_arena_alloc;
    arena.free = guard_arena_free;
    PyObject_SetArenaAllocator(&arena);
}

/* The heap the session holds, from the allocator's own books (no system
 * call). AddressSanitizer's allocator keeps no mallinfo, but counts. */
uint64_t pyexec_py_heap_in_use(void)
{
#ifdef PYEXEC_SANITIZERS
    return (uint64_t)(__sanitizer_get_current_allocated_bytes()
                      + arena_bytes);
#else
    struct mallinfo2 mi = mallinfo2();

    return (uint64_t)(mi.uordblks + mi.hblkhd + arena_bytes);
#endif
}
