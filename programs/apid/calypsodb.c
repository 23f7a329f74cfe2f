/*
 * calypsodb.c: CalypsoDB's two routes, kept exactly as its users know them:
 *
 *   GET  /get/{key}          the raw value, application/octet-stream; 404
 *                            with a JSON error when missing or expired
 *   POST /set/{key}/{value}  stores value under key; 200 {"ok":true}
 *
 * Both path segments are percent-decoded, so any byte can be sent: a '/'
 * inside the key is %2F (the first raw '/' after the key ends it), and
 * everything after that '/' is the value, slashes included.
 */
#include <stdlib.h>
#include <string.h>

#include "apid.h"

enum MHD_Result apid_route_get(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_ns_resolve(s, r, &res)) return res;
    char *key;
    size_t klen;
    int drc = apid_pct_dup(r->param, r->param_len, 0, &key, &klen);
    if (drc == -1) return apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in the key");
    if (drc) return apid_reply_error(r, 500, "nomem", "out of memory");
    void *val;
    size_t vlen;
    int rc = calypso_get(r->db, key, klen, &val, &vlen);
    free(key);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    /* calypso's buffer goes to libmicrohttpd, freed by calypso_free. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(vlen, val, calypso_free);
    if (!resp) { calypso_free(val); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    r->status = 200;
    res = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result apid_route_set(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_ns_resolve(s, r, &res)) return res;
    const char *slash = memchr(r->param, '/', r->param_len);
    if (!slash)
        return apid_reply_error(r, 400, "bad_request", "expected /set/{key}/{value}");
    size_t kraw = (size_t)(slash - r->param);
    char *key, *val;
    size_t klen, vlen;
    int drc = apid_pct_dup(r->param, kraw, 0, &key, &klen);
    if (drc == 0) {
        drc = apid_pct_dup(slash + 1, r->param_len - kraw - 1, 0, &val, &vlen);
        if (drc) free(key);
    }
    if (drc == -1) return apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in the path");
    if (drc) return apid_reply_error(r, 500, "nomem", "out of memory");
    int rc = calypso_put(r->db, key, klen, val, vlen);
    free(key);
    free(val);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    return apid_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}
