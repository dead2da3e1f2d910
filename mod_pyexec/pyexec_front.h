/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The front role (pyexec_front.c): routing requests that mod_proxy sends
 * to PyExecFront's balancer by the route in their session id, and the
 * front's own errors as JSON.
 */
#ifndef PYEXEC_FRONT_H
#define PYEXEC_FRONT_H

#include <httpd.h>

/* After mod_proxy's fixups: the id's route, first in the URL the
 * balancer reads; the id itself out of it. */
int pyexec_front_fixups(request_rec *r);

/* SetHandler pyexec-error: an ErrorDocument in the API's JSON. */
int pyexec_error_handler(request_rec *r);

/* The input filter that gives the body read by the fixups back. */
void pyexec_front_register(void);

#endif /* PYEXEC_FRONT_H */
