/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#ifndef PYEXEC_HANDLER_H
#define PYEXEC_HANDLER_H

#include <httpd.h>

/* SetHandler pyexec: the /execute endpoint. */
int pyexec_handler(request_rec *r);

#endif /* PYEXEC_HANDLER_H */
