/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The HTTP face (pyexec_handler.c): the handlers and the hooks that
 * spare the endpoint httpd's file-system walk.
 */
#ifndef PYEXEC_HANDLER_H
#define PYEXEC_HANDLER_H

#include <httpd.h>

/* Where SetHandler pyexec applies, no file is looked for. */
int pyexec_translate_name(request_rec *r);
int pyexec_map_to_storage(request_rec *r);

/* SetHandler pyexec: the /execute endpoint. */
int pyexec_handler(request_rec *r);

/* SetHandler pyexec-sessions: every live session, for operators. */
int pyexec_sessions_handler(request_rec *r);

#endif /* PYEXEC_HANDLER_H */
