/*
 * ns.c: the ?ns= parameter of the key routes and GET /v1/namespaces.
 *
 * calypso's public API has no namespaces in this build, so apid serves the
 * default namespace alone: ?ns= absent, empty or "default" is the database
 * itself; any other name is answered 404 with code "ns_unavailable", never
 * silently mapped onto the default data.
 */
#include <stdlib.h>
#include <string.h>

#include "apid.h"

int apid_ns_check(apid_req *r, enum MHD_Result *res)
{
    char *ns;
    size_t n;
    int found = apid_query_get(r->query, r->query_len, "ns", &ns, &n);
    if (found < 0) {
        *res = apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in ns");
        return 1;
    }
    int ok = !found || n == 0 || (n == 7 && memcmp(ns, "default", 7) == 0);
    free(ns);
    if (ok) return 0;
    *res = apid_reply_error(r, 404, "ns_unavailable",
                            "namespaces are not available in this build: only \"default\"");
    return 1;
}

enum MHD_Result apid_route_namespaces(apid *s, apid_req *r)
{
    (void)s;
    return apid_reply_json(r, 200, json_pack("{s:[s],s:b}", "namespaces", "default",
                                             "namespaces_supported", 0));
}
