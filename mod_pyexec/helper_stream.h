/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Output as it is written, for a streamed run: OUTPUT frames to the
 * worker while the run goes on (helper_stream.c). Plain C: no Python.
 */
#ifndef HELPER_STREAM_H
#define HELPER_STREAM_H

#include <stddef.h>

/* Once per helper, before the sandbox: the SIGALRM handler that sends
 * what waits when the code is busy elsewhere. 0, or -1 with errno. */
int pyexec_stream_setup(void);

/* Around one streamed run on connection fd. end() sends what is left
 * (before the RESULT) and returns whether every frame went out. */
void pyexec_stream_begin(int fd);
int pyexec_stream_end(void);

/* Text the capture kept (kind PYEXEC_OUTPUT_STDOUT or _STDERR), and one
 * display item (PYEXEC_OUTPUT_DISPLAY: its header and JSON, one frame).
 * Nothing when no streamed run is on. */
void pyexec_stream_put(int kind, const void *data, size_t n);
void pyexec_stream_put_item(int kind, const void *data, size_t n);

/* sys.stdout.flush(): what waits goes out now. */
void pyexec_stream_flush(void);

#endif /* HELPER_STREAM_H */
