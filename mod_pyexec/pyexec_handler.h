/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The HTTP face (pyexec_handler.c): the handlers, the hooks that keep
 * session ids out of what httpd logs and shows, and those that spare
 * the endpoint httpd's file-system walk.
 */
#ifndef PYEXEC_HANDLER_H
#define PYEXEC_HANDLER_H

#include <httpd.h>

/* No session id stays in a request line or query httpd keeps: hidden in
 * every request line as read, given back where the URI is not ours.
 * And where SetHandler pyexec applies, no file is looked for. */
int pyexec_post_read_request(request_rec *r);
int pyexec_translate_name(request_rec *r);
int pyexec_map_to_storage(request_rec *r);

/* For the front (pyexec_front.c): a request of ours, its first ?id= kept
 * and every copy of its query and request line cleaned of ids; or not
 * ours, its request line given back as read. */
void pyexec_ids_take(request_rec *r);
void pyexec_ids_release(request_rec *r);
/* On a front, the query as read: the copies in r are cleaned of ids from
 * post_read_request on. */
const char *pyexec_ids_query(request_rec *r);

/* A whole JSON answer with the endpoint's headers (no caching, no
 * sniffing); for the other handlers too. Returns OK. */
int pyexec_send_json(request_rec *r, int status, const char *body);

/* SetHandler pyexec: the /execute endpoint. */
int pyexec_handler(request_rec *r);

/* SetHandler pyexec-sessions: every live session, for operators. */
int pyexec_sessions_handler(request_rec *r);

#endif /* PYEXEC_HANDLER_H */
