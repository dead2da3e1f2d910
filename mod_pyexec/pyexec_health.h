/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * SetHandler pyexec-health (pyexec_health.c): can this host start a
 * session now? For mod_proxy_hcheck's hcuri.
 */
#ifndef PYEXEC_HEALTH_H
#define PYEXEC_HEALTH_H

#include <httpd.h>

int pyexec_health_handler(request_rec *r);

#endif /* PYEXEC_HEALTH_H */
